package tracefold.peers;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.MapState;
import org.apache.flink.api.common.state.MapStateDescriptor;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.util.Collector;

/**
 * Keyed by trace id: pairs a CLIENT/PRODUCER half (by its span id) with the SERVER/CONSUMER half
 * whose parent span id it is, and emits one call per pair at once. A database CLIENT is a call at
 * once; a SERVER without a parent is a call from "user". What is still unpaired when the trace's
 * processing-time timer fires (gapMs after its first half), or at end of input (an event-time
 * timer at Long.MAX_VALUE: the bounded source's final watermark), is resolved: a lone
 * CLIENT/PRODUCER calls its virtual peer, a lone SERVER/CONSUMER makes no edge. A repeated
 * (span id, kind) within the trace's state is a duplicate and ignored (DESIGN.md section 3).
 */
public class PairHalves extends KeyedProcessFunction<String, SpanHalf, EdgeCount> {
    private final long gapMs;
    private transient MapState<Long, SpanHalf> clients;
    private transient MapState<Long, SpanHalf> servers;
    private transient ValueState<Long> timer;
    /** Per span id, a bit per kind already seen. */
    private transient MapState<Long, Integer> seen;

    public PairHalves(long gapMs) {
        this.gapMs = gapMs;
    }

    @Override
    public void open(OpenContext ctx) {
        TypeInformation<SpanHalf> half = TypeInformation.of(SpanHalf.class);
        clients = getRuntimeContext().getMapState(new MapStateDescriptor<>("clients", Types.LONG, half));
        servers = getRuntimeContext().getMapState(new MapStateDescriptor<>("servers", Types.LONG, half));
        timer = getRuntimeContext().getState(new ValueStateDescriptor<>("timer", Types.LONG));
        seen = getRuntimeContext().getMapState(new MapStateDescriptor<>("seen", Types.LONG, Types.INT));
    }

    @Override
    public void processElement(SpanHalf h, Context ctx, Collector<EdgeCount> out) throws Exception {
        Integer kinds = seen.get(h.spanId);
        int bit = 1 << h.kind;
        if (kinds != null && (kinds & bit) != 0) return; // duplicate
        seen.put(h.spanId, kinds == null ? bit : kinds | bit);
        if (timer.value() == null) {
            long at = ctx.timerService().currentProcessingTime() + gapMs;
            ctx.timerService().registerProcessingTimeTimer(at);
            ctx.timerService().registerEventTimeTimer(Long.MAX_VALUE);
            timer.update(at);
        }
        if (h.kind == SpanHalf.CLIENT || h.kind == SpanHalf.PRODUCER) {
            if (h.database) {
                out.collect(new EdgeCount(h.service, h.peer, 1, h.error ? 1 : 0));
                return;
            }
            SpanHalf s = servers.get(h.spanId);
            if (s != null) {
                servers.remove(h.spanId);
                out.collect(new EdgeCount(h.service, s.service, 1, h.error || s.error ? 1 : 0));
                return;
            }
            clients.put(h.spanId, h);
        } else {
            if (h.parentSpanId == 0) {
                out.collect(new EdgeCount("user", h.service, 1, h.error ? 1 : 0));
                return;
            }
            SpanHalf c = clients.get(h.parentSpanId);
            if (c != null) {
                clients.remove(h.parentSpanId);
                out.collect(new EdgeCount(c.service, h.service, 1, c.error || h.error ? 1 : 0));
                return;
            }
            servers.put(h.parentSpanId, h);
        }
    }

    @Override
    public void onTimer(long timestamp, OnTimerContext ctx, Collector<EdgeCount> out) throws Exception {
        Long at = timer.value();
        if (at == null) return;
        if (timestamp != Long.MAX_VALUE) ctx.timerService().deleteEventTimeTimer(Long.MAX_VALUE);
        else ctx.timerService().deleteProcessingTimeTimer(at);
        List<SpanHalf> lone = new ArrayList<>();
        for (Map.Entry<Long, SpanHalf> e : clients.entries()) lone.add(e.getValue());
        for (SpanHalf c : lone) out.collect(new EdgeCount(c.service, c.peer, 1, c.error ? 1 : 0));
        clients.clear();
        servers.clear(); // unpaired server halves: not an edge
        seen.clear();
        timer.clear();
    }
}
