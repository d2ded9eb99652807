// A peer from the Java ecosystem for the end-to-end tests: Apache Kafka's own KafkaProducer (kafka-clients) writing
// one batch of records per compression codec (gzip, snappy, lz4, zstd), so that the consumer decompresses batches
// another client compressed.
//
// Run with the testkit's `java_command()` (every Kafka jar on the classpath, snappy-java, lz4-java and zstd-jni
// among them) as a single-file program:
//   java -cp '<kafka>/libs/*' CompressedProducer.java BOOTSTRAP TOPIC COUNT
//
// For each codec it sends COUNT records to partition 0 with key "<codec>" and value "<codec>-<i>" (i from 0), in one
// producer per codec (compression.type=<codec>, linger.ms=50 so the records share batches), flushes, and prints
// "SENT <codec> <COUNT>"; then "DONE".

import java.util.Properties;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringSerializer;

public class CompressedProducer {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        String topic = args[1];
        int count = Integer.parseInt(args[2]);
        for (String codec : new String[] {"gzip", "snappy", "lz4", "zstd"}) {
            Properties p = new Properties();
            p.put("bootstrap.servers", bootstrap);
            p.put("compression.type", codec);
            p.put("linger.ms", "50");
            p.put("batch.size", "1048576");
            p.put("acks", "all");
            p.put("key.serializer", StringSerializer.class.getName());
            p.put("value.serializer", StringSerializer.class.getName());
            try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
                for (int i = 0; i < count; i++) {
                    producer.send(new ProducerRecord<>(topic, 0, codec, codec + "-" + i));
                }
                producer.flush();
            }
            System.out.println("SENT " + codec + " " + count);
        }
        System.out.println("DONE");
    }
}
