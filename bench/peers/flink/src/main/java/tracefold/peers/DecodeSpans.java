package tracefold.peers;

import com.google.protobuf.ByteString;
import io.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;
import io.opentelemetry.proto.common.v1.AnyValue;
import io.opentelemetry.proto.common.v1.KeyValue;
import io.opentelemetry.proto.resource.v1.Resource;
import io.opentelemetry.proto.trace.v1.ResourceSpans;
import io.opentelemetry.proto.trace.v1.ScopeSpans;
import io.opentelemetry.proto.trace.v1.Span;
import io.opentelemetry.proto.trace.v1.Status;
import java.lang.management.ManagementFactory;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import org.apache.flink.api.common.accumulators.LongCounter;
import org.apache.flink.api.common.accumulators.LongMinimum;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.functions.RichFlatMapFunction;
import org.apache.flink.util.Collector;

/**
 * Kafka record value (an OTLP ExportTraceServiceRequest) to call halves, with the generated
 * protobuf classes. Counts messages and spans, and notes when (wall clock and process CPU) the
 * first record arrived, in accumulators.
 */
public class DecodeSpans extends RichFlatMapFunction<byte[], SpanHalf> {
    public static final String MESSAGES = "messages", SPANS = "spans", FIRST_MS = "firstRecordMs", FIRST_CPU_NS = "firstRecordCpuNs";
    private static final HexFormat HEX = HexFormat.of();

    private transient LongCounter messages;
    private transient LongCounter spans;
    private transient LongMinimum firstMs;
    private transient LongMinimum firstCpuNs;
    private transient boolean started;

    @Override
    public void open(OpenContext ctx) {
        messages = getRuntimeContext().getLongCounter(MESSAGES);
        spans = getRuntimeContext().getLongCounter(SPANS);
        firstMs = new LongMinimum();
        firstCpuNs = new LongMinimum();
        getRuntimeContext().addAccumulator(FIRST_MS, firstMs);
        getRuntimeContext().addAccumulator(FIRST_CPU_NS, firstCpuNs);
    }

    static long processCpuNs() {
        return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean()).getProcessCpuTime();
    }

    static long idToLong(ByteString b) {
        if (b.isEmpty()) return 0L;
        long v = 0;
        for (int i = Math.max(0, b.size() - 8); i < b.size(); i++) v = (v << 8) | (b.byteAt(i) & 0xff);
        return v;
    }

    static String str(KeyValue kv) {
        AnyValue v = kv.getValue();
        switch (v.getValueCase()) {
            case STRING_VALUE: return v.getStringValue();
            case INT_VALUE: return Long.toString(v.getIntValue());
            case BOOL_VALUE: return Boolean.toString(v.getBoolValue());
            case DOUBLE_VALUE: return Double.toString(v.getDoubleValue());
            default: return null;
        }
    }

    static String first(Map<String, String> a, String... keys) {
        for (String k : keys) {
            String v = a.get(k);
            if (v != null) return v;
        }
        return null;
    }

    @Override
    public void flatMap(byte[] value, Collector<SpanHalf> out) throws Exception {
        if (!started) {
            started = true;
            firstMs.add(System.currentTimeMillis());
            firstCpuNs.add(processCpuNs());
        }
        messages.add(1L);
        ExportTraceServiceRequest req = ExportTraceServiceRequest.parseFrom(value);
        for (ResourceSpans rs : req.getResourceSpansList()) {
            String service = null;
            Resource res = rs.getResource();
            for (KeyValue kv : res.getAttributesList()) {
                if (kv.getKey().equals("service.name")) service = str(kv);
            }
            for (ScopeSpans ss : rs.getScopeSpansList()) {
                List<Span> list = ss.getSpansList();
                spans.add(list.size());
                if (service == null) continue; // counted, makes no edge (DESIGN.md section 3)
                for (Span s : list) {
                    int kind = s.getKindValue();
                    if (kind < SpanHalf.SERVER || kind > SpanHalf.CONSUMER) continue;
                    SpanHalf h = new SpanHalf();
                    h.traceId = HEX.formatHex(s.getTraceId().toByteArray());
                    h.spanId = idToLong(s.getSpanId());
                    h.parentSpanId = idToLong(s.getParentSpanId());
                    h.kind = kind;
                    h.error = s.getStatus().getCode() == Status.StatusCode.STATUS_CODE_ERROR;
                    h.service = service;
                    if (kind == SpanHalf.CLIENT || kind == SpanHalf.PRODUCER) {
                        Map<String, String> a = new HashMap<>();
                        for (KeyValue kv : s.getAttributesList()) a.put(kv.getKey(), str(kv));
                        String db = first(a, "db.system.name", "db.system");
                        if (kind == SpanHalf.CLIENT && db != null) {
                            h.database = true;
                            h.peer = first(a, "peer.service", "service.peer.name", "server.address", "db.namespace", "db.name");
                            if (h.peer == null) h.peer = db;
                        } else if (kind == SpanHalf.CLIENT) {
                            h.peer = first(a, "peer.service", "service.peer.name", "server.address");
                        } else {
                            h.peer = first(a, "peer.service", "service.peer.name", "messaging.destination.name");
                        }
                        if (h.peer == null) h.peer = "unknown";
                    }
                    out.collect(h);
                }
            }
        }
    }
}
