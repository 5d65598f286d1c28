/**
 * A Flink-style topology builder. The job is plain, serialisable data: named sources, operators
 * and sinks, their type (looked up in the registry), config, inputs, parallelism and key. Worker
 * threads rebuild the same job from this description (closures cannot cross threads).
 *
 *   file/replay/kafka --> decode --> fold --> meta store (deltas)
 *                            \------------> trace store (spans, written before any shuffle)
 *
 * Chaining: an operator with exactly one input, whose upstream has exactly one consumer, the same
 * parallelism and the same key, runs fused in the upstream's chain with no hand-off. A key change
 * (keyBy) is where a later runtime inserts a shuffle between workers.
 */
import { TracefoldError } from "./errors.js";

export type Key = "none" | "traceId" | "partition";

export interface NodeSpec {
  name: string;
  type: string;
  config: Record<string, unknown>;
  inputs: string[];
  parallelism: number;
  /** How this node's input is partitioned among its parallel instances. */
  key: Key;
}

export interface TopologyDescription {
  name: string;
  sources: NodeSpec[];
  operators: NodeSpec[];
  sinks: NodeSpec[];
  /** Operator chains: each runs fused in one thread. */
  chains: string[][];
}

export interface NodeOptions {
  inputs?: string[];
  parallelism?: number;
  key?: Key;
}

export class TopologyBuilder {
  private readonly sources: NodeSpec[] = [];
  private readonly operators: NodeSpec[] = [];
  private readonly sinks: NodeSpec[] = [];

  constructor(readonly name = "tracefold") {}

  source(name: string, type: string, config: Record<string, unknown> = {}, opts: NodeOptions = {}): this {
    this.sources.push(spec(name, type, config, { ...opts, inputs: [] }, "partition"));
    return this;
  }

  operator(name: string, type: string, config: Record<string, unknown> = {}, opts: NodeOptions = {}): this {
    this.operators.push(spec(name, type, config, opts, "partition"));
    return this;
  }

  sink(name: string, type: string, config: Record<string, unknown> = {}, opts: NodeOptions = {}): this {
    this.sinks.push(spec(name, type, config, opts, "none"));
    return this;
  }

  /** Validates the graph (every problem at once) and returns its description. */
  build(knownTypes?: { sources: string[]; operators: string[]; sinks: string[] }): TopologyDescription {
    const problems: string[] = [];
    const all = [...this.sources, ...this.operators, ...this.sinks];
    const names = new Set<string>();
    for (const n of all) {
      if (names.has(n.name)) problems.push(`${n.name}: duplicate name`);
      names.add(n.name);
      if (!(n.parallelism >= 1 && Number.isInteger(n.parallelism))) problems.push(`${n.name}: parallelism must be a positive integer`);
    }
    const upstream = new Set([...this.sources, ...this.operators].map((n) => n.name));
    for (const n of [...this.operators, ...this.sinks]) {
      if (n.inputs.length === 0) problems.push(`${n.name}: has no inputs`);
      for (const i of n.inputs) if (!upstream.has(i)) problems.push(`${n.name}: input "${i}" is not a source or operator`);
    }
    if (knownTypes) {
      for (const n of this.sources) if (!knownTypes.sources.includes(n.type)) problems.push(`${n.name}: unknown source type "${n.type}"`);
      for (const n of this.operators) if (!knownTypes.operators.includes(n.type)) problems.push(`${n.name}: unknown operator type "${n.type}"`);
      for (const n of this.sinks) if (!knownTypes.sinks.includes(n.type)) problems.push(`${n.name}: unknown sink type "${n.type}"`);
    }
    if (this.sources.length === 0) problems.push("topology has no source");
    const order = topoOrder(this.operators, problems);
    if (problems.length > 0) throw new TracefoldError("TF_TOPOLOGY_INVALID", `invalid topology "${this.name}":\n  - ${problems.join("\n  - ")}`, "topology");
    const clone = (n: NodeSpec): NodeSpec => JSON.parse(JSON.stringify(n));
    return {
      name: this.name,
      sources: this.sources.map(clone),
      operators: order.map(clone),
      sinks: this.sinks.map(clone),
      chains: chainsOf(order, this.sources),
    };
  }
}

function spec(name: string, type: string, config: Record<string, unknown>, opts: NodeOptions, defaultKey: Key): NodeSpec {
  return { name, type, config, inputs: opts.inputs ?? [], parallelism: opts.parallelism ?? 1, key: opts.key ?? defaultKey };
}

/** Operators in dependency order (Kahn); reports cycles. */
function topoOrder(ops: NodeSpec[], problems: string[]): NodeSpec[] {
  const byName = new Map(ops.map((o) => [o.name, o]));
  const done = new Set<string>();
  const out: NodeSpec[] = [];
  let progress = true;
  while (out.length < ops.length && progress) {
    progress = false;
    for (const o of ops) {
      if (done.has(o.name)) continue;
      if (o.inputs.every((i) => !byName.has(i) || done.has(i))) {
        done.add(o.name);
        out.push(o);
        progress = true;
      }
    }
  }
  if (out.length < ops.length) problems.push(`cycle among operators: ${ops.filter((o) => !done.has(o.name)).map((o) => o.name).join(", ")}`);
  return out;
}

/**
 * Chains: an operator fuses into its single upstream operator's chain when that upstream feeds no
 * other operator (sinks are taps and do not count), the parallelism matches, and the data is
 * already partitioned the way the operator needs. A source partitioned by trace id (the default:
 * producers key by trace id) satisfies key "traceId"; otherwise a traceId operator starts a new
 * chain behind a shuffle.
 */
function chainsOf(ops: NodeSpec[], sources: NodeSpec[]): string[][] {
  const effectiveKey = new Map<string, Key>();
  for (const s of sources) effectiveKey.set(s.name, s.config.keyedByTraceId === false ? "partition" : "traceId");
  const chainOf = new Map<string, string[]>();
  const chains: string[][] = [];
  for (const o of ops) {
    const inKey = o.inputs.length === 1 ? effectiveKey.get(o.inputs[0]) ?? "partition" : "partition";
    effectiveKey.set(o.name, o.key === "partition" || o.key === "none" ? inKey : o.key);
    const up = o.inputs.length === 1 ? ops.find((u) => u.name === o.inputs[0]) : undefined;
    const fusable =
      up !== undefined &&
      ops.filter((n) => n.inputs.includes(up.name)).length === 1 &&
      up.parallelism === o.parallelism &&
      (o.key === "partition" || o.key === "none" || o.key === inKey);
    if (fusable && up) {
      const chain = chainOf.get(up.name)!;
      chain.push(o.name);
      chainOf.set(o.name, chain);
    } else {
      const chain = [o.name];
      chains.push(chain);
      chainOf.set(o.name, chain);
    }
  }
  return chains;
}
