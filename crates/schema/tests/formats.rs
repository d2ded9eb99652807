//! The deserializers on schemas put into the client's cache (no registry is
//! asked): every format, typed and generic, schema evolution, and each kind
//! of failure with its code. The end-to-end tests with a real registry and an
//! independent producer are in the workspace's tests/e2e/schema_registry.rs.

use std::sync::Arc;

use prost::Message as _;
use serde::{Deserialize, Serialize};
use switchyard_runtime::deserializer::Deserializer;
use switchyard_schema::apache_avro::{self, Schema};
use switchyard_schema::avro::{Avro, AvroJson};
use switchyard_schema::json_schema::{JsonSchema, JsonSchemaValue};
use switchyard_schema::prost_reflect::ReflectMessage as _;
use switchyard_schema::protobuf::{Protobuf, ProtobufJson, ProtobufSerde};
use switchyard_schema::wire::{encode_message_indexes, frame};
use switchyard_schema::{
    FailureKind, RegisteredSchema, RegistryConfig, RetryBudget, SchemaRegistry, SchemaType,
};

const ORDER_V1: &str = r#"{"type":"record","name":"Order","namespace":"shop","fields":[
  {"name":"id","type":"long"},{"name":"item","type":"string"},
  {"name":"note","type":["null","string"],"default":null}]}"#;
const ORDER_V2: &str = r#"{"type":"record","name":"Order","namespace":"shop","fields":[
  {"name":"id","type":"long"},{"name":"item","type":"string"},
  {"name":"note","type":["null","string"],"default":null},
  {"name":"quantity","type":"int","default":1}]}"#;

const ORDER_PROTO: &str = r#"
syntax = "proto3";
package shop;
import "google/protobuf/timestamp.proto";
message Order {
  int64 id = 1;
  string item = 2;
  google.protobuf.Timestamp at = 3;
  message Line { string sku = 1; uint32 count = 2; }
  repeated Line lines = 4;
}
message Refund { int64 order_id = 1; }
"#;

const ORDER_JSON_SCHEMA: &str = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema",
  "type":"object","properties":{"id":{"type":"integer","minimum":1},"item":{"type":"string"},
  "address":{"$ref":"address.json"}},"required":["id","item"]}"#;
const ADDRESS_JSON_SCHEMA: &str =
    r#"{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}"#;

/// A client whose registry is unreachable (port 1), with schemas preloaded;
/// unknown ids fail fast.
fn registry() -> SchemaRegistry {
    let r = SchemaRegistry::new(RegistryConfig::new(["http://127.0.0.1:1"]).with_retry(
        RetryBudget {
            initial_backoff: std::time::Duration::from_millis(10),
            max_backoff: std::time::Duration::from_millis(10),
            give_up_after: Some(std::time::Duration::from_millis(50)),
        },
    ))
    .unwrap();
    let schema = |id, schema_type, text: &str| RegisteredSchema {
        id,
        schema_type,
        schema: text.to_string(),
        references: vec![],
    };
    r.preload(schema(1, SchemaType::Avro, ORDER_V1));
    r.preload(schema(2, SchemaType::Avro, ORDER_V2));
    r.preload(schema(3, SchemaType::Protobuf, ORDER_PROTO));
    r.preload(RegisteredSchema {
        id: 4,
        schema_type: SchemaType::Json,
        schema: ORDER_JSON_SCHEMA.into(),
        references: vec![(
            "address.json".into(),
            Arc::new(schema(5, SchemaType::Json, ADDRESS_JSON_SCHEMA)),
        )],
    });
    r.preload(schema(6, SchemaType::Avro, "{not a schema"));
    r
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct OrderV1 {
    id: i64,
    item: String,
    note: Option<String>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct OrderV2 {
    id: i64,
    item: String,
    note: Option<String>,
    quantity: i32,
}

fn avro(id: u32, schema: &str, value: &impl Serialize) -> Vec<u8> {
    let schema = Schema::parse_str(schema).unwrap();
    let writer = apache_avro::writer::datum::GenericDatumWriter::builder(&schema)
        .build()
        .unwrap();
    frame(id, &writer.write_ser_to_vec(value).unwrap())
}

#[test]
fn avro_to_a_typed_value_and_to_json() {
    let r = registry();
    let order = OrderV1 {
        id: 7,
        item: "lamp".into(),
        note: Some("fragile".into()),
    };
    let bytes = avro(1, ORDER_V1, &order);
    assert_eq!(
        Avro::<OrderV1>::new(&r)
            .deserialize("t", Some(&bytes))
            .unwrap(),
        order
    );
    assert_eq!(
        AvroJson::new(&r).deserialize("t", Some(&bytes)).unwrap(),
        serde_json::json!({"id": 7, "item": "lamp", "note": "fragile"})
    );
}

#[test]
fn avro_direct_needs_the_record_name() {
    let r = registry();
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(rename = "Order")]
    struct Named {
        id: i64,
        item: String,
        note: Option<String>,
    }
    let bytes = avro(
        1,
        ORDER_V1,
        &OrderV1 {
            id: 3,
            item: "cup".into(),
            note: None,
        },
    );
    let named = Avro::<Named>::new(&r)
        .direct()
        .decode(Some(&bytes))
        .unwrap();
    assert_eq!((named.id, named.item.as_str()), (3, "cup"));
    let e = Avro::<OrderV1>::new(&r)
        .direct()
        .decode(Some(&bytes))
        .unwrap_err();
    assert_eq!(e.kind, FailureKind::SchemaMismatch, "{e}");
}

#[test]
fn avro_schema_evolution_both_ways() {
    let r = registry();
    let v2 = avro(
        2,
        ORDER_V2,
        &OrderV2 {
            id: 1,
            item: "a".into(),
            note: None,
            quantity: 5,
        },
    );
    let v1 = avro(
        1,
        ORDER_V1,
        &OrderV1 {
            id: 2,
            item: "b".into(),
            note: None,
        },
    );
    // an older reader reads the newer writer: the added field is dropped
    let old = Avro::<OrderV1>::new(&r)
        .with_reader_schema(ORDER_V1, &[])
        .unwrap();
    assert_eq!(old.decode(Some(&v2)).unwrap().id, 1);
    // a newer reader reads the older writer: the added field takes its default
    let new = Avro::<OrderV2>::new(&r)
        .with_reader_schema(ORDER_V2, &[])
        .unwrap();
    assert_eq!(new.decode(Some(&v1)).unwrap().quantity, 1);
    assert_eq!(new.decode(Some(&v2)).unwrap().quantity, 5);
    // without a reader schema the newer type cannot be filled from v1
    let e = Avro::<OrderV2>::new(&r).decode(Some(&v1)).unwrap_err();
    assert_eq!(e.kind, FailureKind::SchemaMismatch, "{e}");
}

#[test]
fn failures_have_their_kind_and_are_counted() {
    let r = registry();
    let d = Avro::<OrderV1>::new(&r);
    let check = |data: Option<&[u8]>, kind: FailureKind| {
        let e = d.decode(data).unwrap_err();
        assert_eq!(e.kind, kind, "{e}");
        let dec = d.deserialize("t", data).unwrap_err();
        assert!(
            dec.to_string()
                .starts_with(&format!("cannot decode payload: {kind}: ")),
            "{dec}"
        );
    };
    check(Some(br#"{"id":1}"#), FailureKind::WrongMagicByte);
    check(Some(&[0, 0, 0]), FailureKind::Truncated);
    check(None, FailureKind::NullPayload);
    check(Some(&frame(1, &[0xff, 0xff])), FailureKind::SchemaMismatch);
    // trailing bytes: written with another schema
    let mut long = avro(
        1,
        ORDER_V1,
        &OrderV1 {
            id: 1,
            item: "x".into(),
            note: None,
        },
    );
    long.extend_from_slice(b"extra");
    check(Some(&long), FailureKind::SchemaMismatch);
    check(Some(&frame(6, &[2])), FailureKind::InvalidSchema);
    check(Some(&frame(3, &[2])), FailureKind::InvalidSchema); // a Protobuf id
    check(Some(&frame(99, &[2])), FailureKind::RegistryUnavailable); // port 1: nobody
    let m = r.metrics();
    // each check decodes one buffer twice: counted once (see `compiled`)
    assert_eq!(m.failures_of(FailureKind::SchemaMismatch), 2, "{m:?}");
    assert_eq!(m.failures_of(FailureKind::InvalidSchema), 2, "{m:?}");
    assert_eq!(m.failures_of(FailureKind::RegistryUnavailable), 1, "{m:?}");
    assert!(m
        .prometheus()
        .contains("switchyard_schema_decode_failures_total{reason=\"wrong_magic_byte\"} 1"));
    // other bytes (even in a reused allocation) are another record: counted again
    let again = frame(1, &[0xff, 0xfe]);
    assert!(d.decode(Some(&again)).is_err());
    assert_eq!(r.metrics().failures_of(FailureKind::SchemaMismatch), 3);
}

fn proto_message(r: &SchemaRegistry, indexes: &[usize], json: serde_json::Value) -> Vec<u8> {
    // encode through the same descriptors (prost-reflect), as a producer would
    let d = ProtobufJson::new(r);
    let probe = frame(3, &encode_message_indexes(indexes));
    let desc = d.decode_message(Some(&probe)).unwrap().descriptor();
    let msg = switchyard_schema::prost_reflect::DynamicMessage::deserialize(desc, json).unwrap();
    let mut payload = encode_message_indexes(indexes);
    payload.extend(msg.encode_to_vec());
    frame(3, &payload)
}

#[test]
fn protobuf_from_proto_source_to_json_serde_and_prost() {
    let r = registry();
    let bytes = proto_message(
        &r,
        &[0],
        serde_json::json!({"id": "12", "item": "desk", "at": "2026-01-02T03:04:05Z",
                           "lines": [{"sku": "A", "count": 2}]}),
    );
    let json = ProtobufJson::new(&r)
        .deserialize("t", Some(&bytes))
        .unwrap();
    assert_eq!(json["id"], 12);
    assert_eq!(json["item"], "desk");
    assert_eq!(json["lines"][0]["count"], 2);
    assert_eq!(json["at"], "2026-01-02T03:04:05Z");

    #[derive(Deserialize)]
    struct Order {
        id: i64,
        item: String,
    }
    let typed: Order = ProtobufSerde::<Order>::new(&r)
        .decode(Some(&bytes))
        .unwrap();
    assert_eq!((typed.id, typed.item.as_str()), (12, "desk"));

    #[derive(Clone, PartialEq, prost::Message)]
    struct OrderMsg {
        #[prost(int64, tag = "1")]
        id: i64,
        #[prost(string, tag = "2")]
        item: String,
    }
    let prost_order = Protobuf::<OrderMsg>::new(&r)
        .expecting("shop.Order")
        .decode(Some(&bytes))
        .unwrap();
    assert_eq!(prost_order.id, 12);

    // message indexes: [1] is Refund, [0, 0] is Order.Line
    let refund = proto_message(&r, &[1], serde_json::json!({"order_id": "3"}));
    assert_eq!(
        ProtobufJson::new(&r).decode(Some(&refund)).unwrap(),
        serde_json::json!({"order_id": 3})
    );
    let e = Protobuf::<OrderMsg>::new(&r)
        .expecting("shop.Order")
        .decode(Some(&refund))
        .unwrap_err();
    assert_eq!(e.kind, FailureKind::SchemaMismatch, "{e}");
    let line = proto_message(&r, &[0, 0], serde_json::json!({"sku": "Z", "count": 9}));
    assert_eq!(
        ProtobufJson::new(&r).decode(Some(&line)).unwrap()["sku"],
        "Z"
    );
    // an index past the file's messages
    let mut bad = encode_message_indexes(&[5]);
    bad.extend([8, 1]);
    let e = ProtobufJson::new(&r)
        .decode(Some(&frame(3, &bad)))
        .unwrap_err();
    assert_eq!(e.kind, FailureKind::SchemaMismatch, "{e}");
    // a payload that is not the message
    let e = ProtobufJson::new(&r)
        .decode(Some(&frame(3, &[0, 0x0a, 0x05, b'x'])))
        .unwrap_err();
    assert_eq!(e.kind, FailureKind::SchemaMismatch, "{e}");
}

#[test]
fn protobuf_from_a_base64_file_descriptor() {
    use base64::Engine;
    // what Confluent's serializers register: the FileDescriptorProto, base64
    let file = prost_types::FileDescriptorProto {
        name: Some("whatever.proto".into()),
        package: Some("shop".into()),
        syntax: Some("proto3".into()),
        message_type: vec![prost_types::DescriptorProto {
            name: Some("Ping".into()),
            field: vec![prost_types::FieldDescriptorProto {
                name: Some("n".into()),
                number: Some(1),
                r#type: Some(prost_types::field_descriptor_proto::Type::Int32 as i32),
                label: Some(prost_types::field_descriptor_proto::Label::Optional as i32),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let r = registry();
    r.preload(RegisteredSchema {
        id: 10,
        schema_type: SchemaType::Protobuf,
        schema: base64::engine::general_purpose::STANDARD.encode(file.encode_to_vec()),
        references: vec![],
    });
    let bytes = frame(10, &[0, 0x08, 0x2a]);
    assert_eq!(
        ProtobufJson::new(&r).decode(Some(&bytes)).unwrap(),
        serde_json::json!({"n": 42})
    );
}

#[test]
fn json_schema_validates_then_deserializes() {
    let r = registry();
    #[derive(Debug, Deserialize, PartialEq)]
    struct Order {
        id: u64,
        item: String,
    }
    let ok = frame(4, br#"{"id":3,"item":"pen","address":{"city":"Oslo"}}"#);
    assert_eq!(
        JsonSchema::<Order>::new(&r)
            .deserialize("t", Some(&ok))
            .unwrap(),
        Order {
            id: 3,
            item: "pen".into()
        }
    );
    assert_eq!(
        JsonSchemaValue::new(&r).decode(Some(&ok)).unwrap()["address"]["city"],
        "Oslo"
    );
    for bad in [
        &br#"{"id":0,"item":"pen"}"#[..],                  // minimum
        br#"{"item":"pen"}"#,                              // required
        br#"{"id":1,"item":"pen","address":{"zip":"1"}}"#, // the referenced schema
        b"not json",
    ] {
        let e = JsonSchema::<Order>::new(&r)
            .decode(Some(&frame(4, bad)))
            .unwrap_err();
        assert_eq!(e.kind, FailureKind::SchemaMismatch, "{e}");
    }
    let e = JsonSchemaValue::new(&r)
        .decode(Some(&frame(1, b"{}")))
        .unwrap_err();
    assert_eq!(e.kind, FailureKind::InvalidSchema, "an Avro id: {e}");
}
