package tracefold.peers;

/** Calls and failed calls on one client -> server edge. */
public class EdgeCount {
    public String client;
    public String server;
    public long calls;
    public long errors;

    public EdgeCount() {}

    public EdgeCount(String client, String server, long calls, long errors) {
        this.client = client;
        this.server = server;
        this.calls = calls;
        this.errors = errors;
    }

    public String key() {
        return client + '\u0000' + server;
    }
}
