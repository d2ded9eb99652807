// The Java row of `switchyard-bench consume`: Apache Kafka's own KafkaConsumer (kafka-clients) in a plain poll loop
// that only reads each value's length, like the raw rdkafka row.
//
// Run by crates/bench/src/java_consumer.rs as a single-file program, with every Kafka jar on the classpath:
//   java -cp '<kafka>/libs/*' ConsumeLoop.java BOOTSTRAP TOPIC RECORDS [KEY=VALUE...]
//
// It subscribes to TOPIC with the consumer settings KEY=VALUE (the group, the offset reset, the fetch sizes) over the
// client's defaults and polls until it has counted RECORDS records. The window runs from the first non-empty poll to
// the record that completes the count; at both ends it reads its CPU time (utime + stime, in clock ticks) from
// /proc/self/stat. Then it prints one line, "ROW count=N elapsed_ns=N cpu_ticks=N", closes the consumer and waits to be
// terminated, so that the benchmark can read its peak resident memory (VmHWM) while it still runs.

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;

public class ConsumeLoop {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], topic = args[1];
        long records = Long.parseLong(args[2]);
        Properties props = new Properties();
        props.put("bootstrap.servers", bootstrap);
        props.put("key.deserializer", "org.apache.kafka.common.serialization.ByteArrayDeserializer");
        props.put("value.deserializer", "org.apache.kafka.common.serialization.ByteArrayDeserializer");
        for (int i = 3; i < args.length; i++) {
            int eq = args[i].indexOf('=');
            props.put(args[i].substring(0, eq), args[i].substring(eq + 1));
        }
        KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props);
        consumer.subscribe(List.of(topic));
        long n = 0, bytes = 0, start = 0, startTicks = 0;
        long deadline = System.nanoTime() + Duration.ofSeconds(120).toNanos();
        while (n < records) {
            if (System.nanoTime() > deadline) {
                System.err.println("java loop timed out at " + n);
                System.exit(1);
            }
            ConsumerRecords<byte[], byte[]> batch = consumer.poll(Duration.ofMillis(100));
            if (batch.isEmpty()) {
                continue;
            }
            if (n == 0) {
                start = System.nanoTime();
                startTicks = cpuTicks();
            }
            for (ConsumerRecord<byte[], byte[]> r : batch) {
                bytes += r.value() == null ? 0 : r.value().length;
                n++;
            }
        }
        long elapsed = System.nanoTime() - start;
        long ticks = cpuTicks() - startTicks;
        System.out.println("ROW count=" + n + " elapsed_ns=" + elapsed + " cpu_ticks=" + ticks + " bytes=" + bytes);
        System.out.flush();
        consumer.close();
        Thread.sleep(Long.MAX_VALUE);
    }

    // utime + stime of this process (every thread), in clock ticks: fields 14 and 15 of /proc/self/stat, counted
    // after the command name, which is in parentheses and may hold spaces.
    static long cpuTicks() throws Exception {
        String stat = Files.readString(Path.of("/proc/self/stat"));
        String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
        return Long.parseLong(f[11]) + Long.parseLong(f[12]);
    }
}
