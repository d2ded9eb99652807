"""An independent producer for the schema tests: Confluent's Python client (confluent-kafka, with its
SchemaRegistryClient and its Avro, Protobuf and JSON Schema serializers) writes records in the Confluent wire format,
registering their schemas in the registry as Confluent's serializers do.

Run with the venv that scripts/install-test-deps.sh makes (~/.cache/switchyard/python-serdes/bin/python); the spec is
one JSON object on stdin:

    {"bootstrap": "127.0.0.1:9092", "registry": "http://127.0.0.1:8080/apis/ccompat/v7", "topic": "t",
     "records": [
        {"format": "avro", "schema": "<Avro schema JSON>", "value": {...}, "key": "k1"},
        {"format": "json", "schema": "<JSON Schema>", "value": {...}},
        {"format": "protobuf", "schema": {<FileDescriptorProto as JSON>}, "message": "Order", "value": {...}},
        {"raw_hex": "7b7d"},
        ... any serialized record may carry "replace_payload_hex": "..." (the bytes after the 5-byte header are
        replaced) or "schema_id": N (the id in the header is replaced) to make a broken record ...
     ]}

Records go to partition 0 in order. Prints a JSON list: the schema id in the header of each record written (null for
a record shorter than the header).
"""

import json
import sys

from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry.json_schema import JSONSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory


def main():
    spec = json.load(sys.stdin)
    # "registry_conf" adds SchemaRegistryClient settings (ssl.ca.location, basic.auth.user.info, ...)
    # a request timeout: httpx's default (none) lets a stalled registry hang the producer for ever
    registry = SchemaRegistryClient(
        dict({"url": spec["registry"], "timeout": 20}, **spec.get("registry_conf", {}))
    )
    topic = spec["topic"]
    ctx = SerializationContext(topic, MessageField.VALUE)
    serializers = {}
    proto_classes = {}

    def message_class(file_json, name):
        key = json.dumps(file_json, sort_keys=True) + name
        if key not in proto_classes:
            fdp = json_format.ParseDict(file_json, descriptor_pb2.FileDescriptorProto())
            pool = descriptor_pool.DescriptorPool()
            pool.Add(fdp)
            full = (fdp.package + "." if fdp.package else "") + name
            proto_classes[key] = message_factory.GetMessageClass(pool.FindMessageTypeByName(full))
        return proto_classes[key]

    def serializer(record):
        fmt = record["format"]
        if fmt == "protobuf":
            cls = message_class(record["schema"], record["message"])
            key = ("protobuf", cls)
            if key not in serializers:
                serializers[key] = ProtobufSerializer(cls, registry, {"use.deprecated.format": False})
            return serializers[key], lambda v: json_format.ParseDict(v, cls())
        key = (fmt, record["schema"])
        if key not in serializers:
            if fmt == "avro":
                serializers[key] = AvroSerializer(registry, record["schema"])
            elif fmt == "json":
                serializers[key] = JSONSerializer(record["schema"], registry)
            else:
                raise ValueError("unknown format " + fmt)
        return serializers[key], lambda v: v

    producer = Producer({"bootstrap.servers": spec["bootstrap"], "acks": "all", "linger.ms": 5})
    ids = []
    for record in spec["records"]:
        if "raw_hex" in record:
            data = bytes.fromhex(record["raw_hex"])
        else:
            ser, make = serializer(record)
            data = ser(make(record["value"]), ctx)
            if "replace_payload_hex" in record:
                data = data[:5] + bytes.fromhex(record["replace_payload_hex"])
            if "schema_id" in record:
                data = data[:1] + int(record["schema_id"]).to_bytes(4, "big") + data[5:]
        ids.append(int.from_bytes(data[1:5], "big") if len(data) >= 5 else None)
        key = record.get("key")
        producer.produce(topic, value=data, key=key.encode() if key else None, partition=0)
    if producer.flush(30) != 0:
        raise SystemExit("records not delivered")
    print(json.dumps(ids))


main()
