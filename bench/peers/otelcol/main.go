// Command otelcol-peer runs an OpenTelemetry Collector built from three components only: the
// Kafka receiver (otlp_proto), the servicegraph connector, and two small exporters written here
// ("edges" keeps the latest servicegraph counters, "spancount" counts spans and notes when the
// last one arrived). It reads a topic from the beginning to the end offsets it had at start,
// waits for the servicegraph store to expire what is still unpaired (virtual nodes) and for a
// last flush, then prints one JSON line on stdout (progress on stderr).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/yamlprovider"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/receiver"

	"github.com/open-telemetry/opentelemetry-collector-contrib/connector/servicegraphconnector"
	"github.com/open-telemetry/opentelemetry-collector-contrib/receiver/kafkareceiver"
)

func logf(format string, a ...any) { fmt.Fprintf(os.Stderr, "[otelcol] "+format+"\n", a...) }

func cpuSeconds() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

// endOffsets: the topic's start and end offsets now, per partition.
func endOffsets(ctx context.Context, adm *kadm.Client, topic string) (start, end map[int32]int64, err error) {
	s, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, nil, err
	}
	e, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, nil, err
	}
	start, end = map[int32]int64{}, map[int32]int64{}
	for _, l := range []kadm.ListedOffsets{s, e} {
		if err := l.Error(); err != nil {
			return nil, nil, fmt.Errorf("topic %q: %w", topic, err)
		}
	}
	s.Each(func(o kadm.ListedOffset) { start[o.Partition] = o.Offset })
	e.Each(func(o kadm.ListedOffset) { end[o.Partition] = o.Offset })
	if len(end) == 0 {
		return nil, nil, fmt.Errorf("topic %q has no partitions (does it exist?)", topic)
	}
	return start, end, nil
}

// committedReached: the group's committed offset is at or past end on every partition.
func committedReached(ctx context.Context, adm *kadm.Client, group, topic string, start, end map[int32]int64) (bool, int64) {
	resp, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return false, -1
	}
	var done int64
	ok := true
	for p, e := range end {
		c, found := resp.Lookup(topic, p)
		at := start[p]
		if found && c.At > at {
			at = c.At
		}
		done += at - start[p]
		if at < e {
			ok = false
		}
	}
	return ok, done
}

const configTemplate = `
receivers:
  kafka:
    brokers: [%s]
    topic: %s
    encoding: otlp_proto
    group_id: %s
    initial_offset: earliest
    autocommit: {enable: true, interval: 200ms}
    max_fetch_size: 52428800
    max_partition_fetch_size: 10485760
connectors:
  servicegraph:
    store: {max_items: %d, ttl: %s}
    store_expiration_loop: 1s
    metrics_flush_interval: %s
    virtual_node_peer_attributes: [peer.service, service.peer.name, server.address, messaging.destination.name]
exporters:
  edges: {}
  spancount: {}
service:
  telemetry:
    logs: {level: warn}
    metrics: {level: none}
  pipelines:
    traces:
      receivers: [kafka]
      exporters: [servicegraph, spancount]
    metrics:
      receivers: [servicegraph]
      exporters: [edges]
`

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "bootstrap brokers, comma-separated")
	topic := flag.String("topic", "", "topic to read (OTLP protobuf ExportTraceServiceRequest per message)")
	group := flag.String("group", "", "consumer group (default: otelcol-peer-<time>)")
	maxItems := flag.Int("store-max-items", 2_000_000, "servicegraph store: max pending edges")
	ttl := flag.Duration("store-ttl", 5*time.Second, "servicegraph store: how long an unpaired half waits")
	flush := flag.Duration("flush", time.Second, "servicegraph metrics_flush_interval")
	timeout := flag.Duration("timeout", 30*time.Minute, "give up after this long")
	flag.Parse()
	if *topic == "" {
		logf("--topic is required")
		os.Exit(2)
	}
	if *group == "" {
		*group = fmt.Sprintf("otelcol-peer-%d", time.Now().UnixNano())
	}
	ctx := context.Background()

	kc, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(*brokers, ",")...))
	if err != nil {
		logf("kafka client: %v", err)
		os.Exit(1)
	}
	adm := kadm.NewClient(kc)
	defer adm.Close()
	start, end, err := endOffsets(ctx, adm, *topic)
	if err != nil {
		logf("end offsets: %v", err)
		os.Exit(1)
	}
	var messages int64
	for p, e := range end {
		messages += e - start[p]
	}
	logf("topic %s: %d partitions, %d messages to read, group %s", *topic, len(end), messages, *group)

	var bs []string
	for _, b := range strings.Split(*brokers, ",") {
		bs = append(bs, fmt.Sprintf("%q", b))
	}
	yaml := fmt.Sprintf(configTemplate, strings.Join(bs, ", "), *topic, *group, *maxItems, ttl.String(), flush.String())

	edges := newEdgesExporter()
	spans := &spanCounter{}
	factories := func() (otelcol.Factories, error) {
		return otelcol.Factories{
			Receivers:  map[component.Type]receiver.Factory{component.MustNewType("kafka"): kafkareceiver.NewFactory()},
			Connectors: map[component.Type]connector.Factory{component.MustNewType("servicegraph"): servicegraphconnector.NewFactory()},
			Exporters: map[component.Type]exporter.Factory{
				component.MustNewType("edges"):     edges.factory(),
				component.MustNewType("spancount"): spans.factory(),
			},
		}, nil
	}
	col, err := otelcol.NewCollector(otelcol.CollectorSettings{
		BuildInfo:               component.BuildInfo{Command: "otelcol-peer", Description: "tracefold peer", Version: "bench"},
		Factories:               factories,
		DisableGracefulShutdown: true,
		ConfigProviderSettings: otelcol.ConfigProviderSettings{ResolverSettings: confmap.ResolverSettings{
			URIs:              []string{"yaml:" + yaml},
			ProviderFactories: []confmap.ProviderFactory{yamlprovider.NewFactory()},
		}},
	})
	if err != nil {
		logf("collector: %v", err)
		os.Exit(1)
	}
	t0 := time.Now()
	runErr := make(chan error, 1)
	go func() { runErr <- col.Run(ctx) }()

	// bounded: poll the group's committed offsets until they reach the end offsets taken at start
	deadline := t0.Add(*timeout)
	lastLog := t0
	for {
		select {
		case err := <-runErr:
			logf("collector stopped early: %v", err)
			os.Exit(1)
		case <-time.After(100 * time.Millisecond):
		}
		ok, done := committedReached(ctx, adm, *group, *topic, start, end)
		if ok {
			break
		}
		if time.Since(lastLog) > 5*time.Second {
			lastLog = time.Now()
			logf("%.0f s: %d/%d messages committed, %d spans received", time.Since(t0).Seconds(), done, messages, spans.count.Load())
		}
		if time.Now().After(deadline) {
			logf("timeout after %s", *timeout)
			os.Exit(1)
		}
	}
	// offsets are marked when a message is received, so the last batch may still be in the
	// pipeline: wait until the span count has not moved for half a second
	for prev := int64(-1); prev != spans.count.Load(); time.Sleep(500 * time.Millisecond) {
		prev = spans.count.Load()
	}
	last := spans.lastAt()
	if last.IsZero() {
		last = time.Now()
	}
	first := t0
	if f := spans.first.Load(); f != 0 {
		first = time.Unix(0, f)
	}
	// from the first span received to the last (group join and startup are not consumption)
	seconds := last.Sub(first).Seconds()
	cpuTotal := cpuSeconds()
	cpu := cpuTotal - float64(spans.firstCPU.Load())/1e9
	n := spans.count.Load()
	logf("end offsets reached: %d spans in %.1f s (%.0f spans/s), CPU %.1f s; waiting for the store to expire and a last flush", n, seconds, float64(n)/seconds, cpu)

	// unpaired halves leave the store after ttl (checked every second), then the next flush
	// carries them; wait until two flushes in a row report the same totals
	time.Sleep(*ttl + 2*time.Second + 2**flush)
	prev := edges.totals()
	for i := 0; i < 30; i++ {
		time.Sleep(*flush + 500*time.Millisecond)
		cur := edges.totals()
		if cur == prev {
			break
		}
		prev = cur
	}
	col.Shutdown()
	<-runErr

	out := map[string]any{
		"peer":            "otelcol",
		"messages":        messages,
		"spans":           n,
		"seconds":         round3(seconds),
		"cpuSeconds":      round3(cpu),
		"cpuSecondsTotal": round3(cpuTotal),
		"storeTTL":        ttl.String(),
		"storeMaxItems":   *maxItems,
		"edges":           edges.list(),
	}
	b, _ := json.Marshal(out)
	fmt.Println(string(b))
}

func round3(x float64) float64 { return float64(int64(x*1000+0.5)) / 1000 }

// sortEdges orders the output by client, then server.
func sortEdges(e []edgeOut) {
	sort.Slice(e, func(i, j int) bool {
		if e[i].Client != e[j].Client {
			return e[i].Client < e[j].Client
		}
		return e[i].Server < e[j].Server
	})
}
