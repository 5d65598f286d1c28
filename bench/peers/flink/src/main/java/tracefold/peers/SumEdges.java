package tracefold.peers;

import java.util.ArrayList;
import org.apache.flink.api.common.accumulators.ListAccumulator;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.util.Collector;

/**
 * Keyed by client -> server: sums the calls and, at end of input, emits each edge's total once
 * and adds it to the "edges" accumulator ({client, server, calls, errors} as a String[]), which
 * the job's result carries back to the client.
 */
public class SumEdges extends KeyedProcessFunction<String, EdgeCount, EdgeCount> {
    public static final String EDGES = "edges";
    private transient ValueState<EdgeCount> total;
    private transient ListAccumulator<ArrayList<String>> edges;

    @Override
    public void open(OpenContext ctx) {
        total = getRuntimeContext().getState(new ValueStateDescriptor<>("total", TypeInformation.of(EdgeCount.class)));
        edges = new ListAccumulator<>();
        getRuntimeContext().addAccumulator(EDGES, edges);
    }

    @Override
    public void processElement(EdgeCount e, Context ctx, Collector<EdgeCount> out) throws Exception {
        EdgeCount t = total.value();
        if (t == null) {
            t = new EdgeCount(e.client, e.server, 0, 0);
            ctx.timerService().registerEventTimeTimer(Long.MAX_VALUE);
        }
        t.calls += e.calls;
        t.errors += e.errors;
        total.update(t);
    }

    @Override
    public void onTimer(long timestamp, OnTimerContext ctx, Collector<EdgeCount> out) throws Exception {
        EdgeCount t = total.value();
        if (t == null) return;
        ArrayList<String> row = new ArrayList<>();
        row.add(t.client);
        row.add(t.server);
        row.add(Long.toString(t.calls));
        row.add(Long.toString(t.errors));
        edges.add(row);
        out.collect(t);
        total.clear();
    }
}
