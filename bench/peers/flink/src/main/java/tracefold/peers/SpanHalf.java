package tracefold.peers;

/**
 * One call half as the decoder hands it on: only CLIENT, PRODUCER, SERVER and CONSUMER spans make
 * one (a Flink POJO: public fields and a no-argument constructor, so the PojoSerializer is used).
 */
public class SpanHalf {
    public static final int SERVER = 2, CLIENT = 3, PRODUCER = 4, CONSUMER = 5;

    /** Lower-case hex trace id: the key of the pairing step. */
    public String traceId;
    public long spanId;
    /** 0 when the span has no parent. */
    public long parentSpanId;
    /** OTLP wire number (2..5). */
    public int kind;
    public boolean error;
    public String service;
    /** CLIENT with database attributes: a database call, complete on its own. */
    public boolean database;
    /**
     * CLIENT/PRODUCER: the node a lone half calls (the database node for a database call), named
     * as DESIGN.md section 3 says.
     */
    public String peer;

    public SpanHalf() {}
}
