package main

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

type emptyConfig struct{}

// ---- spancount: counts spans, remembers when the last batch arrived --------------------------

type spanCounter struct {
	count    atomic.Int64
	first    atomic.Int64 // unix nanos of the first batch
	firstCPU atomic.Int64 // process CPU nanoseconds when the first batch arrived
	last     atomic.Int64 // unix nanos of the latest batch
}

func (s *spanCounter) lastAt() time.Time {
	n := s.last.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

func (s *spanCounter) factory() exporter.Factory {
	return exporter.NewFactory(component.MustNewType("spancount"),
		func() component.Config { return &emptyConfig{} },
		exporter.WithTraces(func(context.Context, exporter.Settings, component.Config) (exporter.Traces, error) {
			return s, nil
		}, component.StabilityLevelDevelopment))
}

func (*spanCounter) Start(context.Context, component.Host) error { return nil }
func (*spanCounter) Shutdown(context.Context) error              { return nil }
func (*spanCounter) Capabilities() consumer.Capabilities {
	return consumer.Capabilities{MutatesData: false}
}
func (s *spanCounter) ConsumeTraces(_ context.Context, td ptrace.Traces) error {
	now := time.Now().UnixNano()
	if s.first.CompareAndSwap(0, now) {
		s.firstCPU.Store(int64(cpuSeconds() * 1e9))
	}
	s.count.Add(int64(td.SpanCount()))
	s.last.Store(now)
	return nil
}

// ---- edges: the latest cumulative servicegraph counters per series -----------------------------

type seriesKey struct{ client, server, connType, failed string }

type edgeOut struct {
	Client string `json:"client"`
	Server string `json:"server"`
	Calls  int64  `json:"calls"`
	Errors int64  `json:"errors"`
}

type edgesExporter struct {
	mu     sync.Mutex
	calls  map[seriesKey]float64
	failed map[seriesKey]float64
}

func newEdgesExporter() *edgesExporter {
	return &edgesExporter{calls: map[seriesKey]float64{}, failed: map[seriesKey]float64{}}
}

func (e *edgesExporter) factory() exporter.Factory {
	return exporter.NewFactory(component.MustNewType("edges"),
		func() component.Config { return &emptyConfig{} },
		exporter.WithMetrics(func(context.Context, exporter.Settings, component.Config) (exporter.Metrics, error) {
			return e, nil
		}, component.StabilityLevelDevelopment))
}

func (*edgesExporter) Start(context.Context, component.Host) error { return nil }
func (*edgesExporter) Shutdown(context.Context) error              { return nil }
func (*edgesExporter) Capabilities() consumer.Capabilities {
	return consumer.Capabilities{MutatesData: false}
}

func (e *edgesExporter) ConsumeMetrics(_ context.Context, md pmetric.Metrics) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		sms := rms.At(i).ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				m := ms.At(k)
				var into map[seriesKey]float64
				switch m.Name() {
				case "traces_service_graph_request_total":
					into = e.calls
				case "traces_service_graph_request_failed_total":
					into = e.failed
				default:
					continue
				}
				dps := m.Sum().DataPoints()
				for d := 0; d < dps.Len(); d++ {
					dp := dps.At(d)
					attr := func(name string) string {
						if v, ok := dp.Attributes().Get(name); ok {
							return v.AsString()
						}
						return ""
					}
					key := seriesKey{attr("client"), attr("server"), attr("connection_type"), attr("failed")}
					v := dp.DoubleValue()
					if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
						v = float64(dp.IntValue())
					}
					into[key] = v // cumulative: the latest value is the total
				}
			}
		}
	}
	return nil
}

// totals: the sums over every series (to see when flushes stop changing).
func (e *edgesExporter) totals() [2]float64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	var t [2]float64
	for _, v := range e.calls {
		t[0] += v
	}
	for _, v := range e.failed {
		t[1] += v
	}
	return t
}

// list: calls and failures per (client, server), over connection types and failed=true/false.
func (e *edgesExporter) list() []edgeOut {
	e.mu.Lock()
	defer e.mu.Unlock()
	type cs struct{ c, s string }
	agg := map[cs]*edgeOut{}
	get := func(k seriesKey) *edgeOut {
		o := agg[cs{k.client, k.server}]
		if o == nil {
			o = &edgeOut{Client: k.client, Server: k.server}
			agg[cs{k.client, k.server}] = o
		}
		return o
	}
	for k, v := range e.calls {
		get(k).Calls += int64(v)
	}
	for k, v := range e.failed {
		get(k).Errors += int64(v)
	}
	out := make([]edgeOut, 0, len(agg))
	for _, o := range agg {
		out = append(out, *o)
	}
	sortEdges(out)
	return out
}
