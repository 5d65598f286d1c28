/**
 * The one explicit registry of component types (the OTel Collector's component list): the
 * runtime and every worker build nodes from a TopologyDescription through this, by type name.
 */
import { DecodeOperator, type DecodeOperatorConfig } from "../operators/decode/index.js";
import { FoldOperator, type FoldOperatorConfig } from "../operators/fold/fold-operator.js";
import { BlackholeSink } from "../sinks/blackhole.js";
import { EmbeddedMetaStore } from "../sinks/embedded/meta-store.js";
import { EmbeddedTraceStore, type TraceStoreConfig } from "../sinks/embedded/trace-store.js";
import { FileSource, type FileSourceConfig } from "../sources/file.js";
import { ReplaySource, type ReplaySourceConfig } from "../sources/replay/source.js";
import { KafkaSource, type KafkaSourceConfig } from "../sources/kafka/source.js";
import { MysqlSink, type MysqlSinkConfig } from "../sinks/mysql/sink.js";
import { HBaseSink, type HBaseSinkConfig } from "../sinks/hbase/sink.js";
import { RepartitionSink, type RepartitionSinkConfig } from "../sinks/repartition.js";
import type { Operator, Sink, Source } from "./contracts.js";
import { TracefoldError } from "./errors.js";
import type { NodeSpec } from "./topology.js";

type Factory<T> = (config: Record<string, unknown>) => T;

export class Registry {
  constructor(
    readonly sources: Record<string, Factory<Source>>,
    readonly operators: Record<string, Factory<Operator>>,
    readonly sinks: Record<string, Factory<Sink>>,
  ) {}

  get types() {
    return { sources: Object.keys(this.sources), operators: Object.keys(this.operators), sinks: Object.keys(this.sinks) };
  }

  createSource(s: NodeSpec): Source {
    return make(this.sources, s, "source");
  }
  createOperator(s: NodeSpec): Operator {
    return make(this.operators, s, "operator");
  }
  createSink(s: NodeSpec): Sink {
    return make(this.sinks, s, "sink");
  }
}

function make<T>(table: Record<string, Factory<T>>, s: NodeSpec, what: string): T {
  const f = table[s.type];
  if (!f) throw new TracefoldError("TF_TOPOLOGY_INVALID", `unknown ${what} type "${s.type}"`, s.name);
  return f(s.config);
}

export const registry = new Registry(
  {
    file: (c) => new FileSource(c as unknown as FileSourceConfig),
    replay: (c) => new ReplaySource(c as ReplaySourceConfig),
    kafka: (c) => new KafkaSource(c as unknown as KafkaSourceConfig),
  },
  {
    decode: (c) => new DecodeOperator(c as unknown as DecodeOperatorConfig),
    fold: (c) => new FoldOperator(c as FoldOperatorConfig),
  },
  {
    embedded_traces: (c) => new EmbeddedTraceStore(c as TraceStoreConfig),
    embedded_meta: () => new EmbeddedMetaStore(),
    blackhole: () => new BlackholeSink(),
    mysql: (c) => new MysqlSink(c as unknown as MysqlSinkConfig),
    hbase: (c) => new HBaseSink(c as unknown as HBaseSinkConfig),
    repartition: (c) => new RepartitionSink(c as unknown as RepartitionSinkConfig),
  },
);
