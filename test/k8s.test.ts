/**
 * The Kubernetes manifests, validated offline: every kustomization under k8s/ (the base and each
 * overlay) is rendered with the real kustomize (scripts/ensure-kustomize.sh builds it once per user
 * and version), and every rendered object must
 *
 *   - match its schema (kubernetes-models, @kubernetes-models/keda, .../prometheus-operator), with
 *     unknown fields rejected: the packages' validate() checks types and required fields but lets
 *     unknown fields through, so strictSchemaProblems() records, through a Proxy, which properties
 *     the compiled validator looks at for each object and reports every field it never looked at;
 *   - pass the cross-object rules of manifestProblems(): selectors match pod labels, probe and
 *     Service ports exist, the ConfigMap is a valid tracefold config (pipeline/config.ts, with the
 *     env the pod gets), every *File setting is a mounted Secret file, grace period > drain
 *     budget, workers and heap derived from the limits, members <= partitions, KEDA's
 *     maxReplicaCount <= partitions / consumers per pod, and every metric the dashboard and the
 *     alerts use is one tracefold exports.
 *
 * And the checks must fail on broken manifests: test/fixtures/k8s-broken/ (rendered by kustomize)
 * and in-test mutations, each rejected with a message naming the problem.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Service } from "kubernetes-models/v1/Service";
import { ServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { ScaledObject } from "@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject";
import { TriggerAuthentication } from "@kubernetes-models/keda/keda.sh/v1alpha1/TriggerAuthentication";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";
import { PrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule";
import { httpListen, loadConfig, workerCount, type Config } from "../pipeline/config.js";
import { assembleRuntime } from "../pipeline/assemble.js";
import { silentLogger } from "../pipeline/contracts.js";
import { prometheusText } from "../pipeline/http.js";
import { Interner } from "../pipeline/intern.js";
import { FoldOperator } from "../operators/fold/fold-operator.js";
import { KafkaDeadLetters } from "../sources/kafka/dead-letter.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const ENTRYPOINT = join(ROOT, "scripts", "container-entrypoint.sh");
const PARTITIONS_ANNOTATION = "tracefold/topic-partitions";
// deep, loose access to rendered YAML; the schemas have checked the shapes by the time rules run
type Obj = any;

/** apiVersion/kind -> the model whose compiled schema validates it. */
const MODELS: Record<string, { prototype: { validate(): void } }> = {
  "v1/ConfigMap": ConfigMap,
  "v1/Service": Service,
  "v1/ServiceAccount": ServiceAccount,
  "apps/v1/Deployment": Deployment,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
  "keda.sh/v1alpha1/ScaledObject": ScaledObject,
  "keda.sh/v1alpha1/TriggerAuthentication": TriggerAuthentication,
  "monitoring.coreos.com/v1/ServiceMonitor": ServiceMonitor,
  "monitoring.coreos.com/v1/PrometheusRule": PrometheusRule,
};

/** KEDA's Kafka scaler parameters (keda.sh docs, apache-kafka scaler, 2.x). */
const KEDA_KAFKA_METADATA = new Set(["bootstrapServers", "bootstrapServersFromEnv", "consumerGroup", "consumerGroupFromEnv", "topic", "topicFromEnv", "lagThreshold", "activationLagThreshold", "offsetResetPolicy", "allowIdleConsumers", "scaleToZeroOnInvalidOffset", "excludePersistentLag", "limitToPartitionsWithLag", "ensureEvenDistributionOfPartitions", "partitionLimitation", "version", "sasl", "tls", "unsafeSsl"]);
const KEDA_SASL: Record<string, string> = { "": "", plain: "plaintext", "scram-sha-256": "scram_sha256", "scram-sha-512": "scram_sha512" };

let kustomize = "";
let exposedMetrics = new Set<string>();
const scratch = mkdtempSync(join(tmpdir(), "tracefold-k8s-test-"));

function render(dir: string): Obj[] {
  const out = execFileSync(kustomize, ["build", dir], { encoding: "utf8", maxBuffer: 64 << 20 });
  return parseAllDocuments(out).map((d) => d.toJS()).filter((o) => o !== null);
}
const name = (o: Obj) => `${o.kind}/${o.metadata?.name}`;
const clone = <T>(x: T): T => structuredClone(x);

/** Schema errors (types, required fields, enums) and unknown fields, as "Kind/name: ..." lines. */
function strictSchemaProblems(o: Obj): string[] {
  const model = MODELS[`${o.apiVersion}/${o.kind}`];
  if (!model) return [`${name(o)}: no schema for ${o.apiVersion} ${o.kind} (add its model to MODELS)`];
  const read = new Map<string, Set<string>>();
  const iterated = new Set<string>();
  const wrap = (v: unknown, path: string): unknown => {
    if (v === null || typeof v !== "object") return v;
    return new Proxy(v as object, {
      get(t, k, r) {
        const x = Reflect.get(t, k, r);
        if (typeof k !== "string") return x;
        if (!Array.isArray(t)) (read.get(path) ?? read.set(path, new Set()).get(path)!).add(k);
        return wrap(x, `${path}.${k}`);
      },
      // a map-typed field (labels, resources.limits, KEDA's trigger metadata) is iterated: any key goes
      ownKeys(t) {
        if (!Array.isArray(t)) iterated.add(path);
        return Reflect.ownKeys(t);
      },
    });
  };
  const problems: string[] = [];
  try {
    model.prototype.validate.call(wrap(o, ""));
  } catch (err) {
    problems.push(`${name(o)}: schema: ${(err as Error).message}`);
  }
  const walk = (v: unknown, path: string) => {
    if (v === null || typeof v !== "object") return;
    if (Array.isArray(v)) return v.forEach((x, i) => walk(x, `${path}.${i}`));
    for (const [k, x] of Object.entries(v)) {
      if (iterated.has(path) || read.get(path)?.has(k)) walk(x, `${path}.${k}`);
      else problems.push(`${name(o)}: unknown field ${`${path}.${k}`.slice(1)}`);
    }
  };
  walk(o, "");
  return problems;
}

const QUANTITY: Record<string, number> = { "": 1, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 };
function quantity(q: unknown): number {
  const m = /^(\d+(?:\.\d+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$/.exec(String(q));
  return m ? Number(m[1]) * QUANTITY[m[2] ?? ""] : NaN;
}
const subset = (sel: Record<string, string> | undefined, labels: Record<string, string> | undefined) =>
  !!sel && Object.keys(sel).length > 0 && Object.entries(sel).every(([k, v]) => labels?.[k] === v);
const fmt = (l: Record<string, string> | undefined) => JSON.stringify(l ?? {});

/** What a container's environment evaluates to in the pod (downward API included). */
function podEnv(c: Obj, where: string, problems: string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of c.env ?? []) {
    const r = e.valueFrom?.resourceFieldRef;
    if (r) {
      if (r.containerName && r.containerName !== c.name) problems.push(`${where}: env ${e.name} reads the resources of container ${r.containerName}`);
      const [kind, resource] = String(r.resource).split(".");
      const q = c.resources?.[kind]?.[resource];
      if (q === undefined) problems.push(`${where}: env ${e.name} comes from ${r.resource}, which the container does not set`);
      else env[e.name] = String(Math.ceil(quantity(q) / quantity(r.divisor ?? "1")));
    } else if (e.valueFrom?.secretKeyRef) env[e.name] = `secret:${e.valueFrom.secretKeyRef.name}/${e.valueFrom.secretKeyRef.key}`;
    else env[e.name] = String(e.value ?? "");
  }
  return env;
}

/** The ConfigMap or Secret key a path in the container is, if a volume mount provides it. */
function mountedFile(pod: Obj, c: Obj, path: string): { kind: "configMap" | "secret"; name: string; key: string; optional: boolean } | null {
  for (const m of c.volumeMounts ?? []) {
    const base = String(m.mountPath).replace(/\/$/, "");
    const rel = m.subPath ? (path === base ? m.subPath : null) : path.startsWith(base + "/") ? path.slice(base.length + 1) : null;
    if (rel === null) continue;
    const v = (pod.volumes ?? []).find((x: Obj) => x.name === m.name);
    const src = v?.configMap ?? v?.secret;
    if (!src) return null;
    const items = src.items as Array<{ key: string; path: string }> | undefined;
    const key = items ? items.find((i) => i.path === rel)?.key : rel;
    if (key === undefined) return null;
    return { kind: v.configMap ? "configMap" : "secret", name: v.configMap ? src.name : src.secretName, key, optional: src.optional === true };
  }
  return null;
}

function portOf(c: Obj, port: unknown): Obj | undefined {
  return (c.ports ?? []).find((p: Obj) => p.name === port || p.containerPort === port);
}

/** Every metric name a PromQL expression uses (recording rules, tracefold:..., are not metrics). */
const metricsIn = (expr: string) => expr.match(/\btracefold_[a-zA-Z0-9_]+/g) ?? [];
function dashboardExprs(v: unknown, out: string[] = []): string[] {
  if (Array.isArray(v)) v.forEach((x) => dashboardExprs(x, out));
  else if (v && typeof v === "object") for (const [k, x] of Object.entries(v)) (k === "expr" || k === "definition") && typeof x === "string" ? out.push(x) : dashboardExprs(x, out);
  return out;
}

/** Every problem of one rendered kustomization, as readable lines; [] when it is fine. */
function manifestProblems(objs: Obj[], exposed: Set<string> = exposedMetrics): string[] {
  const problems = objs.flatMap(strictSchemaProblems);
  const of = (kind: string) => objs.filter((o) => o.kind === kind);
  const namespaces = new Set(objs.map((o) => o.metadata?.namespace ?? ""));
  if (namespaces.size > 1) problems.push(`objects in several namespaces: ${[...namespaces].join(", ")}`);
  const deployments = of("Deployment");
  if (deployments.length === 0) problems.push("no Deployment rendered");
  const podLabels = deployments.map((d) => d.spec?.template?.metadata?.labels ?? {});
  const scaled = of("ScaledObject");
  const configs = new Map<string, { cfg: Config; consumersPerPod: number; secrets: Set<string>; partitions: number }>();

  for (const d of deployments) {
    const where = name(d);
    const pod = d.spec?.template?.spec ?? {};
    const labels = d.spec?.template?.metadata?.labels ?? {};
    const sel = d.spec?.selector?.matchLabels;
    if (!subset(sel, labels)) problems.push(`${where}: spec.selector ${fmt(sel)} does not match the pod template labels ${fmt(labels)}`);
    if (sel && "app.kubernetes.io/version" in sel) problems.push(`${where}: the selector holds app.kubernetes.io/version (selectors are immutable; the version changes)`);
    for (const t of pod.topologySpreadConstraints ?? [])
      if (!subset(t.labelSelector?.matchLabels, labels)) problems.push(`${where}: topologySpreadConstraints (${t.topologyKey}) select ${fmt(t.labelSelector?.matchLabels)}, not this pod ${fmt(labels)}`);
    const c = (pod.containers ?? []).find((x: Obj) => x.name === "tracefold");
    if (!c) {
      problems.push(`${where}: no container named tracefold`);
      continue;
    }
    for (const [probe, path] of [["startupProbe", "/livez"], ["livenessProbe", "/livez"], ["readinessProbe", "/readyz"]] as const) {
      const p = c[probe];
      if (!p?.httpGet) problems.push(`${where}: ${probe} is missing (an httpGet on ${path})`);
      else {
        if (!portOf(c, p.httpGet.port)) problems.push(`${where}: ${probe} port ${JSON.stringify(p.httpGet.port)} is not a container port (${(c.ports ?? []).map((x: Obj) => `${x.name}:${x.containerPort}`).join(", ")})`);
        if (p.httpGet.path !== path) problems.push(`${where}: ${probe} asks ${p.httpGet.path}, tracefold answers it on ${path}`);
      }
    }
    if (!c.resources?.limits?.cpu || !c.resources?.limits?.memory) problems.push(`${where}: limits.cpu and limits.memory must be set (workers and heap come from them)`);
    const workersFrom = (c.env ?? []).find((e: Obj) => e.name === "TRACEFOLD_RUNTIME_WORKERS")?.valueFrom?.resourceFieldRef;
    if (workersFrom?.resource !== "limits.cpu") problems.push(`${where}: TRACEFOLD_RUNTIME_WORKERS must come from limits.cpu (downward API resourceFieldRef)`);
    const memFrom = (c.env ?? []).find((e: Obj) => e.name === "TRACEFOLD_MEMORY_LIMIT_MIB")?.valueFrom?.resourceFieldRef;
    if (memFrom?.resource !== "limits.memory" || quantity(memFrom?.divisor) !== 2 ** 20) problems.push(`${where}: TRACEFOLD_MEMORY_LIMIT_MIB must come from limits.memory with divisor 1Mi`);
    const env = podEnv(c, where, problems);
    // the entrypoint must accept these limits (it refuses < 128 MiB of heap per thread)
    const ep = spawnSync("sh", [ENTRYPOINT, "--print-node-options"], { encoding: "utf8", env: { PATH: process.env.PATH, ...env } });
    if (ep.status !== 0 || !/--max-old-space-size=\d+/.test(ep.stdout)) problems.push(`${where}: the entrypoint refuses these limits: ${ep.stderr.trim()}`);

    // the config: --config PATH must be a ConfigMap key mounted at PATH
    const args: string[] = c.args ?? [];
    const configPath = args[args.indexOf("--config") + 1];
    if (args.indexOf("--config") < 0 || !configPath) {
      problems.push(`${where}: the container's args give no --config`);
      continue;
    }
    const src = mountedFile(pod, c, configPath);
    const cm = src?.kind === "configMap" ? of("ConfigMap").find((x) => x.metadata?.name === src.name) : undefined;
    const text = cm?.data?.[src!.key];
    if (typeof text !== "string") {
      problems.push(`${where}: --config ${configPath} is not a key of a rendered ConfigMap mounted there`);
      continue;
    }
    const file = join(scratch, `${d.metadata.name}-${Math.random().toString(36).slice(2)}-${src!.key}`);
    writeFileSync(file, text);
    let cfg: Config;
    try {
      cfg = loadConfig({ file, env });
    } catch (err) {
      problems.push(`${where}: ConfigMap ${src!.name} key ${src!.key} is not a valid tracefold config: ${(err as Error).message.replaceAll(file, src!.key)}`);
      continue;
    }
    const secrets = new Set<string>((pod.volumes ?? []).filter((v: Obj) => v.secret).map((v: Obj) => v.secret.secretName));
    for (const e of c.env ?? []) if (e.valueFrom?.secretKeyRef) secrets.add(e.valueFrom.secretKeyRef.name);
    for (const [k, v] of Object.entries(cfg)) {
      if (!k.endsWith("File") || v === "") continue;
      const f = mountedFile(pod, c, String(v));
      if (!f) problems.push(`${where}: ${k}=${v}: no mounted Secret or ConfigMap provides this file`);
      else if (f.optional) problems.push(`${where}: ${k}=${v} comes from optional ${f.kind} ${f.name}: tracefold would fail to read it`);
    }
    const listen = httpListen(cfg);
    if (!listen) problems.push(`${where}: http.listen is off: no /livez, /readyz, /metrics`);
    else {
      if (/^(127\.|localhost$|::1$)/.test(listen.host)) problems.push(`${where}: http.listen ${listen.host} is loopback: the kubelet cannot probe it`);
      if (!portOf(c, listen.port)) problems.push(`${where}: http.listen port ${listen.port} is not a container port`);
    }
    const graceS = pod.terminationGracePeriodSeconds ?? 30;
    const drainMs = cfg["runtime.drainTimeoutMs"] as number;
    if (graceS * 1000 < drainMs + 5000) problems.push(`${where}: terminationGracePeriodSeconds ${graceS} s must exceed runtime.drainTimeoutMs (${drainMs} ms) by at least 5 s, or Kubernetes kills the drain`);
    const checkpointMs = cfg["runtime.checkpointIntervalMs"] as number;
    if ((d.spec?.minReadySeconds ?? 0) * 1000 < checkpointMs) problems.push(`${where}: minReadySeconds ${d.spec?.minReadySeconds ?? 0} is shorter than runtime.checkpointIntervalMs (${checkpointMs} ms): a rollout would rebalance again before the members checkpoint`);
    const consumersPerPod = workerCount(cfg) * (cfg["runtime.consumersPerWorker"] as number);
    const partitions = Number(d.metadata?.annotations?.[PARTITIONS_ANNOTATION]);
    if (!Number.isInteger(partitions) || partitions < 1) problems.push(`${where}: annotation ${PARTITIONS_ANNOTATION} must state the topic's partition count`);
    else if (d.spec?.replicas !== undefined && d.spec.replicas * consumersPerPod > partitions)
      problems.push(`${where}: ${d.spec.replicas} replicas x ${consumersPerPod} consumers per pod = ${d.spec.replicas * consumersPerPod} members for ${partitions} partitions: some would sit idle`);
    if (!of("PodDisruptionBudget").some((p) => subset(p.spec?.selector?.matchLabels, labels))) problems.push(`${where}: no PodDisruptionBudget selects its pods`);
    if (pod.serviceAccountName && !of("ServiceAccount").some((s) => s.metadata?.name === pod.serviceAccountName)) problems.push(`${where}: serviceAccountName ${pod.serviceAccountName} is not rendered`);
    configs.set(d.metadata.name, { cfg, consumersPerPod, secrets, partitions });
  }

  for (const s of of("Service")) {
    const i = podLabels.findIndex((l) => subset(s.spec?.selector, l));
    if (i < 0) {
      problems.push(`${name(s)}: selector ${fmt(s.spec?.selector)} matches no pod template (${podLabels.map(fmt).join(", ")})`);
      continue;
    }
    const c = (deployments[i].spec.template.spec.containers ?? []).find((x: Obj) => x.name === "tracefold");
    for (const p of s.spec?.ports ?? []) if (c && !portOf(c, p.targetPort ?? p.port)) problems.push(`${name(s)}: port ${p.name} targets ${p.targetPort}, not a container port`);
  }
  for (const p of of("PodDisruptionBudget"))
    if (!podLabels.some((l) => subset(p.spec?.selector?.matchLabels, l))) problems.push(`${name(p)}: selector ${fmt(p.spec?.selector?.matchLabels)} matches no pod template`);
  for (const m of of("ServiceMonitor")) {
    const svc = of("Service").find((s) => subset(m.spec?.selector?.matchLabels, s.metadata?.labels));
    if (!svc) problems.push(`${name(m)}: selector ${fmt(m.spec?.selector?.matchLabels)} matches no Service's labels`);
    else for (const e of m.spec?.endpoints ?? []) if (!(svc.spec?.ports ?? []).some((p: Obj) => p.name === e.port)) problems.push(`${name(m)}: endpoint port ${e.port} is not a port of ${name(svc)}`);
  }

  for (const so of scaled) {
    const where = name(so);
    const ref = so.spec?.scaleTargetRef ?? {};
    const d = (ref.kind ?? "Deployment") === "Deployment" ? deployments.find((x) => x.metadata?.name === ref.name) : undefined;
    const c = d && configs.get(d.metadata.name);
    if (!d) {
      problems.push(`${where}: scaleTargetRef ${ref.kind ?? "Deployment"}/${ref.name} is not a rendered Deployment`);
      continue;
    }
    if (!c) continue; // its config is invalid: reported above
    if (d.spec?.replicas !== undefined) problems.push(`${where}: ${name(d)} sets spec.replicas while KEDA owns it (every apply would reset the HPA's count)`);
    const cap = Math.floor(c.partitions / c.consumersPerPod);
    if (!(so.spec?.maxReplicaCount <= cap)) problems.push(`${where}: maxReplicaCount ${so.spec?.maxReplicaCount} exceeds ${c.partitions} partitions / ${c.consumersPerPod} consumers per pod = ${cap}`);
    if (!(so.spec?.minReplicaCount >= 1 && so.spec.minReplicaCount <= so.spec.maxReplicaCount)) problems.push(`${where}: minReplicaCount ${so.spec?.minReplicaCount} must be between 1 and maxReplicaCount`);
    for (const t of so.spec?.triggers ?? []) {
      if (t.type !== "kafka") continue;
      const md = t.metadata ?? {};
      for (const k of Object.keys(md)) if (!KEDA_KAFKA_METADATA.has(k)) problems.push(`${where}: kafka trigger metadata ${k} is not a parameter of KEDA's Kafka scaler`);
      if (!/^[1-9]\d*$/.test(String(md.lagThreshold))) problems.push(`${where}: lagThreshold ${JSON.stringify(md.lagThreshold)} must be a positive whole number`);
      const k = c.cfg;
      const expect: Record<string, string> = { bootstrapServers: (k["source.kafka.brokers"] as string[]).join(","), topic: k["source.kafka.topic"] as string, consumerGroup: k["source.kafka.groupId"] as string };
      for (const [key, v] of Object.entries(expect)) if (md[key] !== v) problems.push(`${where}: trigger ${key} ${JSON.stringify(md[key])} is not the config's ${JSON.stringify(v)}`);
      const sasl = KEDA_SASL[k["source.kafka.saslMechanism"] as string];
      if ((md.sasl ?? "none").replace(/^none$/, "") !== sasl) problems.push(`${where}: trigger sasl ${JSON.stringify(md.sasl)} does not match source.kafka.saslMechanism (${JSON.stringify(sasl)})`);
      if ((md.tls === "enable") !== (k["source.kafka.tls"] === true)) problems.push(`${where}: trigger tls ${JSON.stringify(md.tls)} does not match source.kafka.tls`);
      // a partition without a committed offset: KEDA must count its lag from where tracefold starts
      const reset = k["source.kafka.fromBeginning"] ? "earliest" : "latest";
      if ((md.offsetResetPolicy ?? "latest") !== reset) problems.push(`${where}: trigger offsetResetPolicy ${JSON.stringify(md.offsetResetPolicy ?? "latest")} does not match source.kafka.fromBeginning (${reset})`);
      const auth = of("TriggerAuthentication").find((a) => a.metadata?.name === t.authenticationRef?.name);
      if (sasl && !auth) problems.push(`${where}: SASL needs an authenticationRef to a rendered TriggerAuthentication`);
      if (auth) {
        const params = new Set((auth.spec?.secretTargetRef ?? []).map((r: Obj) => r.parameter));
        for (const p of [...(sasl ? ["username", "password"] : []), ...(md.tls === "enable" && k["source.kafka.tlsCaFile"] ? ["ca"] : [])])
          if (!params.has(p)) problems.push(`${name(auth)}: no secretTargetRef for ${p}`);
        for (const r of auth.spec?.secretTargetRef ?? []) if (!c.secrets.has(r.name)) problems.push(`${name(auth)}: Secret ${r.name} is not one the pods use (${[...c.secrets].join(", ")})`);
      }
    }
  }

  const unknownMetrics = (where: string, exprs: string[]) => {
    for (const m of new Set(exprs.flatMap(metricsIn))) if (!exposed.has(m)) problems.push(`${where}: metric ${m} is not one tracefold exports`);
  };
  for (const r of of("PrometheusRule")) unknownMetrics(name(r), (r.spec?.groups ?? []).flatMap((g: Obj) => (g.rules ?? []).map((x: Obj) => String(x.expr))));
  for (const cm of of("ConfigMap").filter((x) => x.metadata?.labels?.grafana_dashboard)) {
    for (const [k, v] of Object.entries(cm.data ?? {})) {
      let dash: unknown;
      try {
        dash = JSON.parse(String(v));
      } catch (err) {
        problems.push(`${name(cm)}: ${k} is not JSON: ${(err as Error).message}`);
        continue;
      }
      const exprs = dashboardExprs(dash);
      if (exprs.length === 0) problems.push(`${name(cm)}: ${k} has no queries`);
      unknownMetrics(`${name(cm)} ${k}`, exprs);
    }
  }
  return problems;
}

/** The Prometheus names /metrics exposes, from the real components (constructed, no I/O). */
async function exportedMetricNames(): Promise<Set<string>> {
  const cfg = loadConfig({
    sets: ["source.type=kafka", "source.kafka.brokers=127.0.0.1:9", "source.kafka.topic=spans", "source.kafka.deadLetterTopic=dlq", "sinks.meta=mysql", "sinks.mysql.url=mysql://u@127.0.0.1:9/db", "sinks.traces=hbase", "sinks.hbase.thrift=127.0.0.1:9", "runtime.workers=1"],
  });
  const runtime = await assembleRuntime(cfg, silentLogger);
  const fold = new FoldOperator({});
  fold.open({ interner: new Interner(), workerIndex: 0, workers: 1, log: silentLogger, now: () => 0, deadLetter: () => {} });
  const metrics: Record<string, number> = {
    ...runtime.metrics(),
    ...fold.metrics(),
    ...new KafkaDeadLetters({ brokers: ["127.0.0.1:9"], deadLetterTopic: "dlq", sourceTopic: "spans" }).metrics(),
    // only with a partition assigned (sources/kafka/source.ts) and only in the main thread
    // (pipeline/process.ts, merged()): not reachable without Kafka, so named here
    'kafka_partition_lag{topic="spans",partition="0"}': 0,
    process_workers: 1, process_workers_started: 1, process_worker_restarts: 0, process_ready: 1, process_rss_bytes: 1, process_heap_used_bytes: 1,
  };
  return new Set([...prometheusText(metrics).matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]));
}

const TARGETS = ["k8s/base", ...readdirSync(join(ROOT, "k8s/overlays")).filter((d) => existsSync(join(ROOT, "k8s/overlays", d, "kustomization.yaml"))).map((d) => `k8s/overlays/${d}`)];
const rendered = new Map<string, Obj[]>();

beforeAll(async () => {
  // builds kustomize on the first run (about a minute on 2 cores), prints the cached path after
  kustomize = execFileSync("bash", [join(ROOT, "scripts", "ensure-kustomize.sh")], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim();
  exposedMetrics = await exportedMetricNames();
  for (const t of TARGETS) rendered.set(t, render(join(ROOT, t)));
}, 600_000);
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe("k8s manifests", () => {
  it("renders the base and every overlay, with the objects each needs", () => {
    expect(TARGETS).toEqual(expect.arrayContaining(["k8s/base", "k8s/overlays/dev", "k8s/overlays/production", "k8s/overlays/production-autoscaled"]));
    const kinds = (t: string) => new Set(rendered.get(t)!.map((o) => o.kind));
    for (const t of TARGETS) for (const k of ["Deployment", "ConfigMap", "Service", "PodDisruptionBudget", "ServiceAccount"]) expect(kinds(t), `${t} renders a ${k}`).toContain(k);
    for (const k of ["ScaledObject", "TriggerAuthentication", "ServiceMonitor", "PrometheusRule"]) expect(kinds("k8s/overlays/production-autoscaled")).toContain(k);
  });

  it.each(TARGETS)("%s passes the schemas and every cross-object rule", (t) => {
    expect(manifestProblems(rendered.get(t)!)).toEqual([]);
  });

  it("knows the metrics tracefold exports, and the shipped dashboard file uses only those", () => {
    for (const m of ["tracefold_kafka_partition_lag", "tracefold_kafka_paused_partitions", "tracefold_runtime_dead_letters_total", "tracefold_runtime_checkpoints_total", "tracefold_process_ready"]) expect(exposedMetrics).toContain(m);
    const dash = JSON.parse(readFileSync(join(ROOT, "k8s/grafana/tracefold-dashboard.json"), "utf8"));
    const used = new Set(dashboardExprs(dash).flatMap(metricsIn));
    expect(used.size).toBeGreaterThan(20);
    expect([...used].filter((m) => !exposedMetrics.has(m))).toEqual([]);
  });

  it("sizes production as docs/SIZING.md says: 12 pods x 4 workers on 144 partitions, KEDA up to 36", () => {
    const d = rendered.get("k8s/overlays/production")!.find((o) => o.kind === "Deployment");
    expect(d.spec.replicas).toBe(12);
    expect(d.spec.template.spec.containers[0].resources.limits.cpu).toBe("4");
    expect(d.metadata.annotations[PARTITIONS_ANNOTATION]).toBe("144");
    expect(rendered.get("k8s/overlays/production-autoscaled")!.find((o) => o.kind === "ScaledObject").spec.maxReplicaCount).toBe(36);
  });
});

describe("the checks reject broken manifests", () => {
  const fixture = (n: string) => manifestProblems(render(join(ROOT, "test/fixtures/k8s-broken", n)));
  const production = () => clone(rendered.get("k8s/overlays/production-autoscaled")!);
  const find = (objs: Obj[], kind: string) => objs.find((o) => o.kind === kind);
  const container = (objs: Obj[]) => find(objs, "Deployment").spec.template.spec.containers[0];

  it("a wrong type: replicas: \"two\"", () => {
    expect(fixture("wrong-type")).toContainEqual(expect.stringMatching(/^Deployment\/tracefold: schema: .*data\/spec\/replicas must be integer/));
  });
  it("an unknown field: terminationGracePeriodSecond", () => {
    expect(fixture("unknown-field")).toContain("Deployment/tracefold: unknown field spec.template.spec.terminationGracePeriodSecond");
  });
  it("a selector mismatch: the Service selects no pod", () => {
    expect(fixture("selector-mismatch")).toContainEqual(expect.stringMatching(/^Service\/tracefold: selector .*tracefold-aggregator.* matches no pod template/));
  });

  const mutations: Array<[string, (o: Obj[]) => void, RegExp]> = [
    ["an unknown field in a KEDA object", (o) => (find(o, "ScaledObject").spec.maxReplicas = 40), /^ScaledObject\/tracefold: unknown field spec\.maxReplicas$/],
    ["a wrong type in a Prometheus Operator object", (o) => (find(o, "ServiceMonitor").spec.endpoints = "metrics"), /^ServiceMonitor\/tracefold: schema: .*endpoints must be array/],
    ["a PDB selecting no pod", (o) => (find(o, "PodDisruptionBudget").spec.selector.matchLabels["app.kubernetes.io/instance"] = "other"), /^PodDisruptionBudget\/tracefold: selector .* matches no pod template/],
    ["a probe on a port the container does not have", (o) => (container(o).readinessProbe.httpGet.port = "metrics"), /readinessProbe port "metrics" is not a container port/],
    ["a grace period shorter than the drain", (o) => (find(o, "Deployment").spec.template.spec.terminationGracePeriodSeconds = 30), /terminationGracePeriodSeconds 30 s must exceed runtime\.drainTimeoutMs \(50000 ms\)/],
    ["maxReplicaCount above partitions / consumers per pod", (o) => (find(o, "ScaledObject").spec.maxReplicaCount = 37), /maxReplicaCount 37 exceeds 144 partitions \/ 4 consumers per pod = 36/],
    ["a CPU limit that makes more members than partitions", (o) => { const d = find(o, "Deployment"); d.spec.replicas = 10; container(o).resources.limits.cpu = "16"; o.splice(o.indexOf(find(o, "ScaledObject")), 1); }, /10 replicas x 16 consumers per pod = 160 members for 144 partitions/],
    ["a config that tracefold rejects", (o) => { const cm = o.find((x) => x.kind === "ConfigMap" && x.data?.["config.yaml"]); cm.data["config.yaml"] = cm.data["config.yaml"].replace("drainTimeoutMs: 50000", "drainTimeoutMs: fifty"); }, /is not a valid tracefold config: .*runtime\.drainTimeoutMs: expected int, got "fifty"/s],
    ["workers not derived from the CPU limit", (o) => { const e = container(o).env.find((x: Obj) => x.name === "TRACEFOLD_RUNTIME_WORKERS"); delete e.valueFrom; e.value = "8"; }, /TRACEFOLD_RUNTIME_WORKERS must come from limits\.cpu/],
    ["a memory limit too small for the heaps", (o) => { container(o).resources.limits.memory = "512Mi"; }, /the entrypoint refuses these limits: .*leaves 71 MiB of heap per thread/],
    ["a password file no Secret provides", (o) => { const c = container(o); c.volumeMounts = c.volumeMounts.filter((m: Obj) => m.name !== "mysql-secret"); }, /sinks\.mysql\.passwordFile=\/etc\/tracefold\/secrets\/mysql\/password: no mounted Secret/],
    ["a KEDA trigger on another consumer group", (o) => (find(o, "ScaledObject").spec.triggers[0].metadata.consumerGroup = "tracefold-old"), /trigger consumerGroup "tracefold-old" is not the config's "tracefold"/],
    ["a misspelt KEDA parameter", (o) => (find(o, "ScaledObject").spec.triggers[0].metadata.lagTreshold = "5"), /metadata lagTreshold is not a parameter of KEDA's Kafka scaler/],
    ["a ServiceMonitor on a port the Service lacks", (o) => (find(o, "ServiceMonitor").spec.endpoints[0].port = "http-metrics"), /endpoint port http-metrics is not a port of Service\/tracefold/],
    ["an alert on a metric tracefold does not export", (o) => (find(o, "PrometheusRule").spec.groups[0].rules[1].expr = "tracefold_kafka_lag > 1"), /metric tracefold_kafka_lag is not one tracefold exports/],
    ["a dashboard query with a misspelt metric", (o) => { const cm = o.find((x) => x.metadata?.labels?.grafana_dashboard); const k = Object.keys(cm.data)[0]; cm.data[k] = cm.data[k].replace("tracefold_fold_spans_in_total", "tracefold_fold_spans_inn_total"); }, /metric tracefold_fold_spans_inn_total is not one tracefold exports/],
  ];
  it.each(mutations)("%s", (_what, mutate, message) => {
    const objs = production();
    mutate(objs);
    expect(manifestProblems(objs)).toContainEqual(expect.stringMatching(message));
  });
});

describe("container entrypoint (scripts/container-entrypoint.sh)", () => {
  const run = (env: Record<string, string>, args: string[] = ["--print-node-options"]) =>
    spawnSync("sh", [ENTRYPOINT, ...args], { encoding: "utf8", env: { PATH: process.env.PATH, ...env } });

  it("splits limit x percent over the main thread and the workers, and keeps other options", () => {
    expect(run({ TRACEFOLD_MEMORY_LIMIT_MIB: "14336", TRACEFOLD_RUNTIME_WORKERS: "4" }).stdout.trim()).toBe("--max-old-space-size=2007");
    expect(run({ TRACEFOLD_MEMORY_LIMIT_MIB: "2048", TRACEFOLD_RUNTIME_WORKERS: "1", TRACEFOLD_HEAP_PERCENT: "50", NODE_OPTIONS: "--enable-source-maps" }).stdout.trim()).toBe("--enable-source-maps --max-old-space-size=512");
    expect(run({ TRACEFOLD_MEMORY_LIMIT_MIB: "2048", NODE_OPTIONS: "--max-old-space-size=999" }).stdout.trim()).toBe("--max-old-space-size=999");
    expect(run({}).stdout.trim()).toBe("");
  });

  it("refuses limits that leave too little heap, and malformed values", () => {
    const small = run({ TRACEFOLD_MEMORY_LIMIT_MIB: "512", TRACEFOLD_RUNTIME_WORKERS: "4" });
    expect(small.status).toBe(2);
    expect(small.stderr).toContain("leaves 71 MiB of heap per thread (< 128)");
    expect(run({ TRACEFOLD_MEMORY_LIMIT_MIB: "2Gi" }).stderr).toContain("TRACEFOLD_MEMORY_LIMIT_MIB must be a number of MiB");
    expect(run({ TRACEFOLD_MEMORY_LIMIT_MIB: "2048", TRACEFOLD_HEAP_PERCENT: "95" }).status).toBe(2);
  });

  it("execs node with the flag, and the cap reaches every worker thread's heap", () => {
    // a stand-in for bin/tracefold.mjs that reports the heap limits of its main thread and of a worker
    const home = join(scratch, "home");
    mkdirSync(join(home, "bin"), { recursive: true });
    writeFileSync(join(home, "bin", "tracefold.mjs"), `
      import { Worker } from "node:worker_threads";
      import v8 from "node:v8";
      const mib = () => Math.round(v8.getHeapStatistics().heap_size_limit / 2 ** 20);
      const w = new Worker("const v8 = require('node:v8'); require('node:worker_threads').parentPort.postMessage(Math.round(v8.getHeapStatistics().heap_size_limit / 2 ** 20))", { eval: true });
      w.once("message", (m) => { console.log(JSON.stringify({ args: process.argv.slice(2), main: mib(), worker: m })); w.terminate(); });
    `);
    const r = run({ TRACEFOLD_HOME: home, TRACEFOLD_MEMORY_LIMIT_MIB: "2048", TRACEFOLD_RUNTIME_WORKERS: "3" }, ["run", "--config", "/etc/tracefold/config.yaml"]);
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.args).toEqual(["run", "--config", "/etc/tracefold/config.yaml"]);
    // 2048 x 70% / 4 = 358 MiB of old space; heap_size_limit adds the young generation
    for (const limit of [out.main, out.worker]) {
      expect(limit).toBeGreaterThanOrEqual(358);
      expect(limit).toBeLessThan(358 + 128);
    }
  });
});

describe("Dockerfile (not built here: the machines have no container engine)", () => {
  const dockerfile = readFileSync(join(ROOT, "Dockerfile"), "utf8");
  it("runs the entrypoint as a numeric non-root user, with the command the Deployment expects", () => {
    expect(dockerfile).toMatch(/^FROM node:20-slim AS build$/m);
    expect(dockerfile).toMatch(/^USER 1000:1000$/m);
    expect(dockerfile).toMatch(/^ENTRYPOINT \["\/app\/scripts\/container-entrypoint\.sh"\]$/m);
    const cmd = JSON.parse(/^CMD (\[.*\])$/m.exec(dockerfile)![1]);
    const d = rendered.get("k8s/base")!.find((o) => o.kind === "Deployment");
    expect(d.spec.template.spec.containers[0].args).toEqual(cmd);
    expect(d.spec.template.spec.securityContext.runAsUser).toBe(1000);
  });
  it("copies every directory the TypeScript build compiles, and .dockerignore keeps them", () => {
    const include: string[] = JSON.parse(readFileSync(join(ROOT, "tsconfig.json"), "utf8")).include;
    const ignored = readFileSync(join(ROOT, ".dockerignore"), "utf8").split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
    for (const dir of include.map((p) => p.split("/")[0])) {
      expect(dockerfile).toContain(`COPY ${dir} ./${dir}`);
      expect(ignored).not.toContain(dir);
    }
  });
});
