package tracefold.peers;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import org.apache.flink.api.common.JobExecutionResult;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.serialization.AbstractDeserializationSchema;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.connector.kafka.source.KafkaSource;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;

/**
 * The Flink peer: KafkaSource (from the earliest offsets to the end offsets at start) -> decode
 * OTLP -> keyBy(trace id) -> pair halves -> keyBy(client -> server) -> sum, run in a local
 * MiniCluster; the edge totals come back in an accumulator and are printed as one JSON line.
 *
 *   java -jar flink-peer.jar --brokers B --topic T [--group G] [--parallelism 2] [--gap-ms 5000]
 */
public final class FlinkPeer {
    private FlinkPeer() {}

    /** The record value as it is. */
    static final class RawBytes extends AbstractDeserializationSchema<byte[]> {
        @Override
        public byte[] deserialize(byte[] message) {
            return message;
        }
    }

    static void log(String msg) {
        System.err.println("[flink] " + msg);
    }

    static String json(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') b.append('\\').append(c);
            else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
            else b.append(c);
        }
        return b.append('"').toString();
    }

    public static void main(String[] args) throws Exception {
        String brokers = null, topic = null, group = "flink-peer-" + System.currentTimeMillis();
        int parallelism = 2;
        long gapMs = 5000;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--brokers": brokers = args[++i]; break;
                case "--topic": topic = args[++i]; break;
                case "--group": group = args[++i]; break;
                case "--parallelism": parallelism = Integer.parseInt(args[++i]); break;
                case "--gap-ms": gapMs = Long.parseLong(args[++i]); break;
                default: throw new IllegalArgumentException("unknown argument " + args[i]);
            }
        }
        if (brokers == null || topic == null) {
            log("usage: --brokers B --topic T [--group G] [--parallelism N] [--gap-ms MS]");
            System.exit(2);
        }

        Configuration conf = new Configuration();
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(conf);
        env.setParallelism(parallelism);

        KafkaSource<byte[]> source = KafkaSource.<byte[]>builder()
                .setBootstrapServers(brokers)
                .setTopics(topic)
                .setGroupId(group)
                .setStartingOffsets(OffsetsInitializer.earliest())
                .setBounded(OffsetsInitializer.latest())
                .setValueOnlyDeserializer(new RawBytes())
                .setProperty("fetch.max.bytes", String.valueOf(50 << 20))
                .setProperty("max.partition.fetch.bytes", String.valueOf(10 << 20))
                .setProperty("commit.offsets.on.checkpoint", "false")
                .build();

        DataStream<EdgeCount> edges = env
                .fromSource(source, WatermarkStrategy.noWatermarks(), "kafka")
                .flatMap(new DecodeSpans()).name("decode")
                .keyBy(h -> h.traceId)
                .process(new PairHalves(gapMs)).name("pair")
                .keyBy(EdgeCount::key)
                .process(new SumEdges()).name("sum");

        log("topic " + topic + ", parallelism " + parallelism + ", group " + group);
        edges.sinkTo(new DiscardingSink<>()).name("discard");
        JobExecutionResult jr = env.execute("tracefold-flink-peer");
        List<EdgeCount> result = new ArrayList<>();
        @SuppressWarnings("unchecked")
        List<ArrayList<String>> rows = (List<ArrayList<String>>) jr.getAllAccumulatorResults().getOrDefault(SumEdges.EDGES, List.of());
        for (ArrayList<String> r : rows) result.add(new EdgeCount(r.get(0), r.get(1), Long.parseLong(r.get(2)), Long.parseLong(r.get(3))));
        long endMs = System.currentTimeMillis();
        long endCpu = DecodeSpans.processCpuNs();
        Map<String, Object> acc = jr.getAllAccumulatorResults();
        long messages = ((Number) acc.getOrDefault(DecodeSpans.MESSAGES, 0L)).longValue();
        long spans = ((Number) acc.getOrDefault(DecodeSpans.SPANS, 0L)).longValue();
        Number firstMs = (Number) acc.get(DecodeSpans.FIRST_MS);
        Number firstCpu = (Number) acc.get(DecodeSpans.FIRST_CPU_NS);
        double seconds = firstMs == null ? 0 : (endMs - firstMs.longValue()) / 1000.0;
        double cpu = (endCpu - (firstCpu == null ? endCpu : firstCpu.longValue())) / 1e9;
        double cpuTotal = endCpu / 1e9;
        log(String.format("%d spans in %.1f s (%.0f spans/s), CPU %.1f s (process total %.1f s)", spans, seconds, spans / Math.max(seconds, 1e-3), cpu, cpuTotal));

        result.sort(Comparator.comparing((EdgeCount e) -> e.client).thenComparing(e -> e.server));
        StringBuilder b = new StringBuilder();
        b.append("{\"peer\":\"flink\",\"messages\":").append(messages)
                .append(",\"spans\":").append(spans)
                .append(",\"seconds\":").append(Math.round(seconds * 1000) / 1000.0)
                .append(",\"cpuSeconds\":").append(Math.round(cpu * 1000) / 1000.0)
                .append(",\"cpuSecondsTotal\":").append(Math.round(cpuTotal * 1000) / 1000.0)
                .append(",\"parallelism\":").append(parallelism)
                .append(",\"edges\":[");
        for (int i = 0; i < result.size(); i++) {
            EdgeCount e = result.get(i);
            if (i > 0) b.append(',');
            b.append("{\"client\":").append(json(e.client)).append(",\"server\":").append(json(e.server))
                    .append(",\"calls\":").append(e.calls).append(",\"errors\":").append(e.errors).append('}');
        }
        b.append("]}");
        System.out.println(b);
        System.exit(0);
    }
}
