// A peer from the Java ecosystem for the end-to-end tests: Apache Kafka's own KafkaConsumer (kafka-clients) in a
// consumer group beside Switchyard listeners.
//
// Run with the testkit's `java_command()` (every Kafka jar on the classpath) as a single-file program:
//   java -cp '<kafka>/libs/*' JavaPeerConsumer.java BOOTSTRAP GROUP TOPIC LOG INSTANCE [ASSIGNMENT_STRATEGY]
//
// It subscribes to TOPIC in GROUP (cooperative-sticky unless told otherwise), appends one line per processed record
// to the processed log LOG in the testkit's format ("instance\ttopic\tpartition\toffset\tkey\tvalue\n", one write
// per line, O_APPEND), commits synchronously after every poll and when partitions are revoked, prints STARTED once
// it polls and ASSIGNED/REVOKED lines on rebalances, and on SIGTERM wakes its poll, commits, and leaves the group.

import java.io.FileOutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.RebalanceInProgressException;
import org.apache.kafka.common.errors.WakeupException;

public class JavaPeerConsumer {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], group = args[1], topic = args[2], logPath = args[3], instance = args[4];
        String strategy = args.length > 5
                ? args[5]
                : "org.apache.kafka.clients.consumer.CooperativeStickyAssignor";
        Properties props = new Properties();
        props.put("bootstrap.servers", bootstrap);
        props.put("group.id", group);
        props.put("client.id", instance);
        props.put("enable.auto.commit", "false");
        props.put("auto.offset.reset", "earliest");
        props.put("partition.assignment.strategy", strategy);
        props.put("session.timeout.ms", "6000");
        props.put("heartbeat.interval.ms", "1000");
        props.put("max.poll.records", "100");
        props.put("key.deserializer", "org.apache.kafka.common.serialization.StringDeserializer");
        props.put("value.deserializer", "org.apache.kafka.common.serialization.StringDeserializer");

        KafkaConsumer<String, String> consumer = new KafkaConsumer<>(props);
        FileOutputStream log = new FileOutputStream(logPath, true);
        Map<TopicPartition, OffsetAndMetadata> pending = new HashMap<>();
        CountDownLatch done = new CountDownLatch(1);
        Thread main = Thread.currentThread();
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            consumer.wakeup();
            try {
                done.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }));

        consumer.subscribe(List.of(topic), new ConsumerRebalanceListener() {
            @Override
            public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
                commit(consumer, pending);
                System.out.println("REVOKED " + partitions);
            }

            @Override
            public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
                System.out.println("ASSIGNED " + partitions);
            }

            @Override
            public void onPartitionsLost(Collection<TopicPartition> partitions) {
                pending.keySet().removeAll(partitions);
                System.out.println("LOST " + partitions);
            }
        });
        boolean started = false;
        boolean failed = false;
        try {
            while (true) {
                ConsumerRecords<String, String> records = consumer.poll(Duration.ofMillis(100));
                if (!started) {
                    System.out.println("STARTED");
                    started = true;
                }
                for (ConsumerRecord<String, String> r : records) {
                    String line = instance + "\t" + r.topic() + "\t" + r.partition() + "\t" + r.offset() + "\t"
                            + clean(r.key()) + "\t" + clean(r.value()) + "\n";
                    log.write(line.getBytes(StandardCharsets.UTF_8));
                    pending.put(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
                }
                commit(consumer, pending);
            }
        } catch (WakeupException e) {
            // SIGTERM: commit what was processed and leave the group.
        } catch (Throwable e) {
            // Printed here: the single-file launcher can fail while trimming the stack trace of what main throws.
            e.printStackTrace();
            failed = true;
        } finally {
            try {
                commit(consumer, pending);
                consumer.close(Duration.ofSeconds(10));
                log.close();
                System.out.println("CLOSED");
            } finally {
                done.countDown();
            }
        }
        if (failed) {
            System.exit(2);
        }
    }

    // A commit refused because a cooperative rebalance is in progress keeps its offsets pending: the next poll
    // completes the rebalance, and they are committed after it, or in onPartitionsRevoked for partitions that move
    // (the Java client's documented way; dropping them would hand processed records to the next owner).
    static void commit(KafkaConsumer<String, String> consumer, Map<TopicPartition, OffsetAndMetadata> pending) {
        if (pending.isEmpty()) {
            return;
        }
        try {
            consumer.commitSync(new HashMap<>(pending));
            pending.clear();
        } catch (RebalanceInProgressException e) {
            System.out.println("COMMIT DEFERRED " + e.getMessage());
        }
    }

    static String clean(String s) {
        return s == null ? "" : s.replace('\t', ' ').replace('\n', ' ');
    }
}
