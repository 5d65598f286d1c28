// The naive Node peer: kafkajs + the generated protobufjs OTLP decoder
// (@opentelemetry/otlp-transformer) + Maps keyed by strings, written the way a first version is
// usually written (bench/micro.ts's naive baseline, reading OTLP protobuf from Kafka instead of
// OTLP/JSON from memory). Pairs CLIENT/PRODUCER with SERVER/CONSUMER halves by
// (trace id, span id) / (trace id, parent span id) over the whole input, with tracefold's
// semantics (DESIGN.md section 3: database calls at once, user -> root, lone clients to virtual
// nodes at end of input, duplicates ignored), and counts calls/errors per client -> server.
//
//   node peer.cjs --brokers B --topic T [--group G]
// One JSON line on stdout at the end; progress on stderr.
"use strict";
const { parseArgs } = require("node:util");
const { Kafka, logLevel } = require("kafkajs");
const root = require("@opentelemetry/otlp-transformer/build/src/generated/root.js");

const ExportTraceServiceRequest = root.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;
const { values } = parseArgs({ options: { brokers: { type: "string" }, topic: { type: "string" }, group: { type: "string" } } });
if (!values.brokers || !values.topic) {
  console.error("usage: peer.cjs --brokers B --topic T [--group G]");
  process.exit(2);
}
const log = (msg) => process.stderr.write(`[naive-node] ${msg}\n`);

const seen = new Set();
const clients = new Map();
const servers = new Map();
const edges = new Map();
let spanCount = 0;

function hex(bytes) {
  return bytes && bytes.length ? Buffer.from(bytes).toString("hex") : "";
}

function attributesOf(list) {
  const out = {};
  for (const a of list || []) {
    const v = a.value || {};
    out[a.key] = v.stringValue !== undefined && v.stringValue !== null ? v.stringValue : v.intValue !== undefined && v.intValue !== null ? String(v.intValue) : undefined;
  }
  return out;
}

function edge(client, server, failed) {
  const key = client + "|" + server;
  let e = edges.get(key);
  if (!e) {
    e = { client, server, calls: 0, errors: 0 };
    edges.set(key, e);
  }
  e.calls++;
  if (failed) e.errors++;
}

function onSpan(service, o) {
  const span = {
    traceId: hex(o.traceId),
    spanId: hex(o.spanId),
    parentSpanId: hex(o.parentSpanId),
    service,
    kind: o.kind,
    error: !!(o.status && o.status.code === 2),
    attributes: attributesOf(o.attributes),
  };
  const id = span.traceId + ":" + span.spanId + ":" + span.kind;
  if (seen.has(id)) return;
  seen.add(id);
  if (span.kind === 3 || span.kind === 4) {
    const a = span.attributes;
    const db = a["db.system.name"] ?? a["db.system"];
    if (span.kind === 3 && db !== undefined) {
      edge(service, a["peer.service"] ?? a["service.peer.name"] ?? a["server.address"] ?? a["db.namespace"] ?? a["db.name"] ?? db, span.error);
      return;
    }
    const key = span.traceId + ":" + span.spanId;
    const server = servers.get(key);
    if (server) {
      servers.delete(key);
      edge(service, server.service, span.error || server.error);
    } else clients.set(key, span);
  } else if (span.kind === 2 || span.kind === 5) {
    if (span.parentSpanId === "") {
      edge("user", service, span.error);
      return;
    }
    const key = span.traceId + ":" + span.parentSpanId;
    const client = clients.get(key);
    if (client) {
      clients.delete(key);
      edge(client.service, service, client.error || span.error);
    } else servers.set(key, span);
  }
}

function onMessage(value) {
  const req = ExportTraceServiceRequest.decode(value);
  for (const rs of req.resourceSpans || []) {
    const service = attributesOf(rs.resource && rs.resource.attributes)["service.name"];
    for (const ss of rs.scopeSpans || []) {
      for (const o of ss.spans || []) {
        spanCount++;
        if (service === undefined) continue;
        onSpan(service, o);
      }
    }
  }
}

async function main() {
  const kafka = new Kafka({ clientId: "naive-node-peer", brokers: values.brokers.split(","), logLevel: logLevel.ERROR });
  const admin = kafka.admin();
  await admin.connect();
  const offsets = await admin.fetchTopicOffsets(values.topic);
  await admin.disconnect();
  const end = new Map(offsets.map((p) => [p.partition, Number(p.high)]));
  let left = offsets.reduce((n, p) => n + (Number(p.high) - Number(p.low)), 0);
  const messages = left;
  log(`topic ${values.topic}: ${offsets.length} partitions, ${messages} messages to read`);

  const consumer = kafka.consumer({ groupId: values.group || `naive-node-peer-${process.pid}-${Date.now()}`, maxBytes: 50 << 20, maxBytesPerPartition: 10 << 20 });
  await consumer.connect();
  await consumer.subscribe({ topic: values.topic, fromBeginning: true });
  let t0 = 0;
  let cpu0 = null;
  let lastLog = Date.now();
  await new Promise((resolve, reject) => {
    if (left === 0) return resolve();
    consumer
      .run({
        eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
          if (t0 === 0) {
            t0 = performance.now();
            cpu0 = process.cpuUsage();
          }
          const high = end.get(batch.partition);
          for (const m of batch.messages) {
            if (Number(m.offset) >= high) continue;
            onMessage(m.value);
            resolveOffset(m.offset);
            if (--left === 0) resolve();
          }
          await heartbeat();
          if (Date.now() - lastLog > 5000) {
            lastLog = Date.now();
            log(`${messages - left}/${messages} messages, ${spanCount} spans`);
          }
        },
      })
      .catch(reject);
  });
  // end of input: lone clients are calls to virtual nodes (producers: to their destination)
  for (const c of clients.values()) {
    const a = c.attributes;
    if (c.kind === 4) edge(c.service, a["peer.service"] ?? a["service.peer.name"] ?? a["messaging.destination.name"] ?? "unknown", c.error);
    else edge(c.service, a["peer.service"] ?? a["service.peer.name"] ?? a["server.address"] ?? "unknown", c.error);
  }
  const seconds = t0 ? (performance.now() - t0) / 1000 : 0;
  const cpu = process.cpuUsage(cpu0 || undefined);
  const total = process.cpuUsage();
  await consumer.disconnect();
  const list = [...edges.values()].sort((a, b) => (a.client < b.client ? -1 : a.client > b.client ? 1 : a.server < b.server ? -1 : a.server > b.server ? 1 : 0));
  log(`${spanCount} spans in ${seconds.toFixed(1)} s (${Math.round(spanCount / Math.max(seconds, 1e-3))} spans/s)`);
  const r3 = (x) => Math.round(x * 1000) / 1000;
  process.stdout.write(
    JSON.stringify({
      peer: "naive-node",
      messages,
      spans: spanCount,
      seconds: r3(seconds),
      cpuSeconds: r3((cpu.user + cpu.system) / 1e6),
      cpuSecondsTotal: r3((total.user + total.system) / 1e6),
      edges: list,
    }) + "\n",
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
