/**
 * A seeded, layered microservice graph for the replay generator.
 *
 *     user --virtual--> gateways (layer 0) --rpc--> layer 1 --rpc--> layer 2 ... (a DAG)
 *                          |                    \--> databases (db.* attributes, no server half)
 *                          |                    \--> queues (PRODUCER -> CONSUMER in a deeper layer,
 *                          |                         or no consumer at all: "uninstrumented" queue)
 *                          \--> uninstrumented peers (CLIENT with peer.service and/or server.address)
 *
 * Everything is decided here, once, from the seed: names (interned once), operations, latency
 * (lognormal median + sigma per operation / call), error probabilities per call site, and the edge
 * slot every call lands in, paired or unpaired, so the generator's hot loop only indexes arrays.
 * Edge slot names follow DESIGN.md section 3 exactly (see `clientNodeName` and friends below).
 */
import type { Interner } from "../../pipeline/intern.js";
import { KIND_CONSUMER, KIND_SERVER } from "../../pipeline/span-batch.js";
import { Rng } from "./rng.js";

export const CALL_RPC = 0;
export const CALL_DATABASE = 1;
export const CALL_MESSAGING = 2;
export const CALL_EXTERNAL = 3;
export type CallKind = typeof CALL_RPC | typeof CALL_DATABASE | typeof CALL_MESSAGING | typeof CALL_EXTERNAL;

export type { EdgeType } from "../../operators/fold/deltas.js";
import type { EdgeType } from "../../operators/fold/deltas.js";

/** The virtual client of root SERVER spans (DESIGN 3). */
export const USER_NODE = "user";
/** Node name when neither peer.service nor server.address (nor the destination) is present. */
export const UNKNOWN_NODE = "unknown";

/** One (client, server, type) edge the traffic can produce; truth counters are indexed by `index`. */
export interface EdgeSlot {
  readonly index: number;
  readonly client: string;
  readonly server: string;
  readonly type: EdgeType;
  /** `${client}|${server}|${type}` */
  readonly key: string;
}

export interface GraphService {
  readonly index: number;
  readonly name: string;
  readonly nameId: number;
  /** 0 = gateway (entry point reached from `user`); deeper layers are only called. */
  readonly layer: number;
  readonly protocol: "http" | "grpc";
  /** SERVER operations (what callers and roots invoke). */
  readonly operations: number[];
  /** CONSUMER operations, one per queue this service consumes. */
  readonly consumerOperations: number[];
  /** Call sites this service owns (outgoing calls of any kind). */
  readonly callSites: number[];
}

export interface GraphOperation {
  readonly index: number;
  readonly service: number;
  /** KIND_SERVER or KIND_CONSUMER */
  readonly kind: number;
  readonly name: string;
  readonly nameId: number;
  /** http.route intern id (0 for gRPC and consumer operations). */
  readonly routeId: number;
  /** Self time (the span's own work, excluding calls): lognormal median in us, and sigma. */
  readonly medianUs: number;
  readonly sigma: number;
  /** Probability that this span fails on its own (roots and consumers; rpc servers use the call site's). */
  readonly errorProb: number;
  /** Calls run in parallel (start together) rather than one after the other. */
  readonly parallel: boolean;
  /** Probability of wrapping the calls in an in-process INTERNAL child span. */
  readonly internalProb: number;
  readonly internalNameId: number;
  /** Call sites, in call order. */
  readonly calls: number[];
  /** Edge slot of `user -> service` when this operation is an entry point, else -1. */
  readonly rootSlot: number;
}

export interface CallSite {
  readonly index: number;
  readonly kind: CallKind;
  /** Calling service. */
  readonly from: number;
  /** Probability that an invocation of a calling operation makes this call. */
  readonly probability: number;
  /** Attributes of the CLIENT / PRODUCER span (intern ids, 0 = absent). */
  readonly nameId: number;
  readonly peerId: number;
  readonly addrId: number;
  readonly dbSystemId: number;
  readonly dbNamespaceId: number;
  readonly msgDestId: number;
  /** rpc: callee service; messaging: consumer service (-1 for an uninstrumented queue). */
  readonly target: number;
  /** Callee / consumer operation; -1 = a random SERVER operation of `target` per call. */
  readonly targetOp: number;
  /** Leaf duration (database, external, producer send) in us: lognormal median and sigma. */
  readonly medianUs: number;
  readonly sigma: number;
  /** rpc/messaging: probability that the server/consumer half fails. */
  readonly serverErrorProb: number;
  /** Probability that the client/producer half fails on its own (rpc: on top of server failures). */
  readonly clientErrorProb: number;
  /** Edge slot when both halves are emitted (rpc, messaging) or the database slot; -1 when none. */
  readonly pairedSlot: number;
  /** Edge slot when the client/producer half is alone (virtual / messaging); -1 for databases. */
  readonly unpairedSlot: number;
  readonly label: string;
}

export interface ServiceGraphOptions {
  seed: number;
  /** Number of instrumented services (>= 1). Default 40. */
  services?: number;
  /** Maximum number of server/consumer levels in a trace; bounds the layers. Default 6. */
  maxDepth?: number;
  /** Scale of every error probability (1 = about 1% of calls fail). Default 1. */
  errorRate?: number;
}

export interface ServiceGraph {
  readonly seed: number;
  readonly services: GraphService[];
  readonly operations: GraphOperation[];
  readonly callSites: CallSite[];
  readonly slots: EdgeSlot[];
  /** SERVER operations of gateways: a trace's root is one of these, chosen uniformly. */
  readonly entryOperations: number[];
  /** Names of the database, queue and uninstrumented nodes, for reports and tests. */
  readonly databases: string[];
  readonly queues: string[];
  readonly externals: string[];
}

const GATEWAY_NAMES = ["frontend", "api-gateway", "mobile-bff", "web-bff", "edge-proxy", "partner-api"];
const SERVICE_NAMES = [
  "checkout", "cart", "inventory", "catalog", "pricing", "payments", "orders", "shipping", "users",
  "auth", "search", "recommendations", "reviews", "notifications", "email", "fraud", "ledger",
  "billing", "currency", "ads", "profile", "session", "media", "geo", "tax", "loyalty", "wishlist",
  "quotes", "warehouse", "returns", "coupons", "accounts", "audit", "config", "features", "images",
  "locale", "ratings", "scheduler", "invoices",
];
const HTTP_TEMPLATES: [string, string][] = [
  ["GET", "/api/{r}/{id}"], ["GET", "/api/{r}"], ["POST", "/api/{r}"], ["PUT", "/api/{r}/{id}"],
  ["DELETE", "/api/{r}/{id}"], ["GET", "/api/{r}/{id}/summary"],
];
const GRPC_VERBS = ["Get", "List", "Create", "Update", "Check", "Compute"];
const INTERNAL_NAMES = ["validate", "render", "compute", "serialize", "authorize", "cache-lookup"];
const DB_SYSTEMS = ["postgresql", "mysql", "redis", "mongodb", "postgresql", "mysql"];
const EVENTS = ["created", "updated", "completed", "requested", "events"];
const EXTERNALS: { peer?: string; addr?: string; name: string }[] = [
  { peer: "payments-gateway-ext", name: "POST" },
  { addr: "api.partner.example", name: "GET" },
  { name: "GET" }, // neither attribute: the virtual node is "unknown"
  { peer: "sms-provider-ext", addr: "sms.example.net", name: "POST" },
  { addr: "geo.maps.example", name: "GET" },
  { peer: "identity-ext", name: "POST" },
];

/** DESIGN 3: a lone CLIENT's virtual server is peer.service, else server.address, else unknown. */
export function virtualNodeName(peer: string, addr: string): string {
  return peer || addr || UNKNOWN_NODE;
}
/** DESIGN 3: a database node is peer.service, server.address, db.namespace, db.system (first present). */
export function databaseNodeName(peer: string, addr: string, namespace: string, system: string): string {
  return peer || addr || namespace || system || UNKNOWN_NODE;
}
/** DESIGN 3: a lone PRODUCER calls peer.service, else messaging.destination.name, else unknown. */
export function messagingNodeName(peer: string, dest: string): string {
  return peer || dest || UNKNOWN_NODE;
}

function pascal(s: string): string {
  return s
    .split(/[-_.]/)
    .map((p) => (p ? p[0].toUpperCase() + p.slice(1) : p))
    .join("");
}

function clamp(x: number, lo: number, hi: number): number {
  return x < lo ? lo : x > hi ? hi : x;
}

/** Builds the graph; every string it will ever put on a span is interned here. */
export function buildServiceGraph(opts: ServiceGraphOptions, interner: Interner): ServiceGraph {
  const rng = new Rng(opts.seed, 1);
  const nServices = Math.max(1, Math.floor(opts.services ?? 40));
  const maxDepth = Math.max(1, Math.floor(opts.maxDepth ?? 6));
  const errorScale = Math.max(0, opts.errorRate ?? 1);
  const id = (s: string | undefined): number => (s ? interner.internString(s) : 0);

  // ---- services and layers ------------------------------------------------------------------
  const nGateways = nServices === 1 ? 1 : clamp(Math.round(nServices * 0.08), 1, Math.min(6, nServices - 1));
  const nLayers = Math.max(1, Math.min(maxDepth, nServices >= 24 ? 5 : nServices >= 8 ? 4 : nServices >= 3 ? 3 : 2));
  const gatewayPool = rng.shuffle(GATEWAY_NAMES.slice());
  const servicePool = rng.shuffle(SERVICE_NAMES.slice());
  const names: string[] = [];
  const bases: string[] = [];
  for (let i = 0; i < nGateways; i++) {
    const base = gatewayPool[i % gatewayPool.length];
    const round = Math.floor(i / gatewayPool.length);
    names.push(round === 0 ? base : `${base}-${round + 1}`);
    bases.push(base.replace(/-(bff|api|proxy|gateway)$/, ""));
  }
  for (let i = 0; i < nServices - nGateways; i++) {
    const base = servicePool[i % servicePool.length];
    const round = Math.floor(i / servicePool.length);
    names.push(round === 0 ? base : `${base}-${round + 1}`);
    bases.push(base);
  }
  const layerOf: number[] = [];
  const layers: number[][] = [];
  for (let l = 0; l < nLayers; l++) layers.push([]);
  for (let i = 0; i < nGateways; i++) {
    layerOf.push(0);
    layers[0].push(i);
  }
  const rest = nServices - nGateways;
  for (let k = 0; k < rest; k++) {
    const l = nLayers === 1 ? 0 : 1 + Math.floor((k * (nLayers - 1)) / rest);
    layerOf.push(l);
    layers[l].push(nGateways + k);
  }
  const nonEmpty = layers.map((_, l) => l).filter((l) => layers[l].length > 0);

  // ---- rpc edges: a DAG from shallow to deep layers, fan-out 1-4 -----------------------------
  const downstream: number[][] = names.map(() => []);
  const hasCaller: boolean[] = names.map((_, i) => layerOf[i] === 0);
  const addRpc = (a: number, b: number): boolean => {
    if (a === b || downstream[a].includes(b)) return false;
    downstream[a].push(b);
    hasCaller[b] = true;
    return true;
  };
  for (let li = 1; li < nonEmpty.length; li++) {
    const prev = layers[nonEmpty[li - 1]];
    for (const s of layers[nonEmpty[li]]) {
      const open = prev.filter((c) => downstream[c].length < 4);
      addRpc(rng.pick(open.length > 0 ? open : prev), s);
    }
  }
  for (let li = 0; li + 1 < nonEmpty.length; li++) {
    const next = layers[nonEmpty[li + 1]];
    const deeper = nonEmpty.slice(li + 1).flatMap((l) => layers[l]);
    for (const s of layers[nonEmpty[li]]) {
      const want = rng.range(1, 4);
      for (let tries = 0; downstream[s].length < want && tries < 12; tries++) {
        addRpc(s, rng.chance(0.7) ? rng.pick(next) : rng.pick(deeper));
      }
    }
  }

  // ---- edge slots ------------------------------------------------------------------------------
  const slots: EdgeSlot[] = [];
  const slotIndex = new Map<string, number>();
  const slot = (client: string, server: string, type: EdgeType): number => {
    const key = `${client}|${server}|${type}`;
    let i = slotIndex.get(key);
    if (i === undefined) {
      i = slots.length;
      slots.push({ index: i, client, server, type, key });
      slotIndex.set(key, i);
    }
    return i;
  };

  // per-edge error probability: most edges 0.2-1%, some flaky ones 2-5%: about 1% on average
  const edgeError = (): number => (rng.chance(0.85) ? 0.002 + rng.next() * 0.008 : 0.02 + rng.next() * 0.03) * errorScale;
  const p = (x: number): number => clamp(x, 0, 1);

  const services: GraphService[] = names.map((name, i) => ({
    index: i,
    name,
    nameId: id(name),
    layer: layerOf[i],
    protocol: layerOf[i] === 0 || rng.chance(0.65) ? "http" : "grpc",
    operations: [],
    consumerOperations: [],
    callSites: [],
  }));
  const callSites: CallSite[] = [];
  const addSite = (site: Omit<CallSite, "index">): number => {
    const index = callSites.length;
    callSites.push({ ...site, index });
    services[site.from].callSites.push(index);
    return index;
  };

  // rpc call sites; the client half names its callee by peer.service and/or server.address
  for (const s of services) {
    for (const t of downstream[s.index]) {
      const callee = services[t];
      const mode = rng.next();
      const peer = mode < 0.6 || mode >= 0.9 ? callee.name : "";
      const addr = mode >= 0.6 ? `${callee.name}.prod.svc.cluster.local` : "";
      const e = edgeError();
      addSite({
        kind: CALL_RPC, from: s.index, probability: 0.55 + rng.next() * 0.45,
        nameId: 0, // the callee operation's name, set per call
        peerId: id(peer), addrId: id(addr), dbSystemId: 0, dbNamespaceId: 0, msgDestId: 0,
        target: t, targetOp: -1, medianUs: 0, sigma: 0,
        serverErrorProb: p(e * 0.7), clientErrorProb: p(e * 0.3),
        pairedSlot: slot(s.name, callee.name, "rpc"),
        unpairedSlot: slot(s.name, virtualNodeName(peer, addr), "virtual"),
        label: `${s.name} -> ${callee.name} (rpc)`,
      });
    }
  }

  const inner = services.filter((s) => s.layer > 0);
  const deepHalf = inner.filter((s) => s.layer >= Math.max(1, Math.floor(nLayers / 2)));
  const anyOwner = (): GraphService => rng.pick(deepHalf.length > 0 ? deepHalf : inner.length > 0 ? inner : services);

  // databases: client spans with db.* attributes and sometimes peer.service / server.address
  const databases: string[] = [];
  const dbBases = new Set<string>();
  const nDb = Math.max(1, Math.round(nServices / 5));
  for (let k = 0; k < nDb; k++) {
    const system = DB_SYSTEMS[rng.int(DB_SYSTEMS.length)];
    const owner = anyOwner();
    let base = bases[owner.index];
    if (dbBases.has(base)) base = `${base}-${k}`;
    dbBases.add(base);
    const ns = system === "redis" ? "" : `${base.replace(/-/g, "_")}_db`;
    const mode = rng.next();
    const peer = mode < 0.25 ? `${base}-${system}` : "";
    const addr = mode >= 0.25 && mode < 0.5 ? `${base}-${system}.db.internal` : "";
    const namespace = system === "redis" ? (mode < 0.75 ? "" : "0") : ns;
    const node = databaseNodeName(peer, addr, namespace, system);
    if (!databases.includes(node)) databases.push(node);
    const owners = [owner];
    if (rng.chance(0.25)) {
      const second = anyOwner();
      if (second !== owner) owners.push(second);
    }
    const statements =
      system === "redis" ? ["GET", "SET", "HGETALL", "MGET"] : system === "mongodb" ? [`find ${base}`, `insert ${base}`] : [`SELECT ${base}`, `INSERT ${base}`, `UPDATE ${base}`];
    for (const o of owners) {
      const e = edgeError();
      addSite({
        kind: CALL_DATABASE, from: o.index, probability: 0.5 + rng.next() * 0.5,
        nameId: id(rng.pick(statements)), peerId: id(peer), addrId: id(addr), dbSystemId: id(system),
        dbNamespaceId: id(namespace), msgDestId: 0, target: -1, targetOp: -1,
        medianUs: system === "redis" ? 300 + rng.int(700) : 1000 + rng.int(6000), sigma: 0.3 + rng.next() * 0.5,
        serverErrorProb: 0, clientErrorProb: p(e),
        pairedSlot: slot(o.name, node, "database"), unpairedSlot: -1,
        label: `${o.name} -> ${node} (database ${system})`,
      });
    }
  }

  // queues: PRODUCER in a shallower service, CONSUMER (parent = producer) in a deeper one; the
  // last queue has no instrumented consumer (the producer stays alone: a messaging call to the
  // destination name)
  const queues: string[] = [];
  const consumerOf: { queue: string; service: number; site: number[] }[] = [];
  const nQueues = nServices >= 3 ? Math.max(2, Math.round(nServices / 10)) : 1;
  for (let k = 0; k < nQueues; k++) {
    const uninstrumented = nQueues >= 2 && k === nQueues - 1;
    const candidates = services.filter((s) => s.layer >= 2 || (nLayers <= 2 && s.layer >= 1));
    const consumer = uninstrumented || candidates.length === 0 ? undefined : rng.pick(candidates);
    const producers = services.filter((s) => consumer === undefined || s.layer < consumer.layer);
    const first = rng.pick(producers);
    const list = [first];
    if (producers.length > 1 && rng.chance(0.4)) {
      const second = rng.pick(producers);
      if (second !== first) list.push(second);
    }
    const dest = uninstrumented ? `${bases[first.index]}.audit` : `${bases[first.index]}.${rng.pick(EVENTS)}`;
    if (queues.includes(dest)) continue;
    queues.push(dest);
    const sites: number[] = [];
    for (const s of list) {
      const e = edgeError();
      sites.push(
        addSite({
          kind: CALL_MESSAGING, from: s.index, probability: 0.3 + rng.next() * 0.5,
          nameId: id(`${dest} publish`), peerId: 0, addrId: 0, dbSystemId: 0, dbNamespaceId: 0,
          msgDestId: id(dest), target: consumer ? consumer.index : -1, targetOp: -1,
          medianUs: 200 + rng.int(1500), sigma: 0.4,
          serverErrorProb: p(e * 0.8), clientErrorProb: p(e * 0.2),
          pairedSlot: consumer ? slot(s.name, consumer.name, "messaging") : -1,
          unpairedSlot: slot(s.name, messagingNodeName("", dest), "messaging"),
          label: `${s.name} -> ${consumer ? consumer.name : dest} (messaging ${dest})`,
        }),
      );
    }
    if (consumer) consumerOf.push({ queue: dest, service: consumer.index, site: sites });
  }

  // uninstrumented peers: CLIENT spans with no server side
  const externals: string[] = [];
  const nExt = Math.max(2, Math.round(nServices / 10));
  for (let k = 0; k < nExt; k++) {
    const x = EXTERNALS[k % EXTERNALS.length];
    const round = Math.floor(k / EXTERNALS.length);
    const sfx = (s: string | undefined): string =>
      !s ? "" : round === 0 ? s : s.includes(".") ? s.replace(".", `-${round + 1}.`) : `${s}-${round + 1}`;
    const peer = sfx(x.peer);
    const addr = sfx(x.addr);
    const node = virtualNodeName(peer, addr);
    if (!externals.includes(node)) externals.push(node);
    const caller = rng.pick(inner.length > 0 ? inner : services);
    const e = edgeError();
    addSite({
      kind: CALL_EXTERNAL, from: caller.index, probability: 0.2 + rng.next() * 0.4,
      nameId: id(x.name), peerId: id(peer), addrId: id(addr), dbSystemId: 0, dbNamespaceId: 0, msgDestId: 0,
      target: -1, targetOp: -1, medianUs: 5000 + rng.int(40000), sigma: 0.5,
      serverErrorProb: 0, clientErrorProb: p(e * 2),
      pairedSlot: -1, unpairedSlot: slot(caller.name, node, "virtual"),
      label: `${caller.name} -> ${node} (uninstrumented)`,
    });
  }

  // ---- operations ------------------------------------------------------------------------------
  const operations: GraphOperation[] = [];
  const entryOperations: number[] = [];
  const pickCalls = (s: GraphService, exclude: (site: CallSite) => boolean): number[] => {
    const own = s.callSites.filter((c) => !exclude(callSites[c]));
    const chosen = own.filter(() => rng.chance(0.55));
    if (chosen.length === 0 && own.length > 0) chosen.push(rng.pick(own));
    return chosen;
  };
  const addOperation = (s: GraphService, kind: number, name: string, route: string, calls: number[]): number => {
    const index = operations.length;
    const isRoot = s.layer === 0 && kind === KIND_SERVER;
    operations.push({
      index, service: s.index, kind, name, nameId: id(name), routeId: id(route),
      medianUs: s.layer === 0 ? 1000 + rng.int(4000) : 300 + rng.int(8000), sigma: 0.3 + rng.next() * 0.6,
      errorProb: p((kind === KIND_CONSUMER ? 0.004 : isRoot ? 0.002 : 0) * errorScale),
      parallel: rng.chance(0.25), internalProb: rng.chance(0.4) ? 0.2 + rng.next() * 0.5 : 0,
      internalNameId: id(rng.pick(INTERNAL_NAMES)), calls, rootSlot: isRoot ? slot(USER_NODE, s.name, "virtual") : -1,
    });
    if (kind === KIND_SERVER) s.operations.push(index);
    else s.consumerOperations.push(index);
    if (isRoot) entryOperations.push(index);
    return index;
  };
  for (const s of services) {
    const nOps = s.layer === 0 ? rng.range(3, 5) : rng.range(2, 4);
    const used = new Set<string>();
    for (let k = 0; k < nOps; k++) {
      let name: string;
      let route = "";
      if (s.protocol === "http") {
        // gateways expose the resources of the services behind them
        const down = downstream[s.index];
        const resource = s.layer === 0 && down.length > 0 ? bases[rng.pick(down)] : bases[s.index];
        const [method, tpl] = rng.pick(HTTP_TEMPLATES);
        route = tpl.replace("{r}", resource);
        name = `${method} ${route}`;
      } else {
        name = `shop.${pascal(bases[s.index])}Service/${rng.pick(GRPC_VERBS)}${pascal(bases[s.index])}`;
      }
      if (used.has(name)) continue;
      used.add(name);
      addOperation(s, KIND_SERVER, name, route, pickCalls(s, (c) => c.kind === CALL_RPC && c.target === s.index));
    }
  }
  // a few services call themselves (an edge to itself, DESIGN 3): op 0 calls op 1, never back
  for (const s of inner) {
    if (s.operations.length < 2 || !rng.chance(0.1)) continue;
    const e = edgeError();
    const target = s.operations[1];
    const site = addSite({
      kind: CALL_RPC, from: s.index, probability: 0.5, nameId: operations[target].nameId,
      peerId: id(s.name), addrId: 0, dbSystemId: 0, dbNamespaceId: 0, msgDestId: 0,
      target: s.index, targetOp: target, medianUs: 0, sigma: 0,
      serverErrorProb: p(e * 0.7), clientErrorProb: p(e * 0.3),
      pairedSlot: slot(s.name, s.name, "rpc"), unpairedSlot: slot(s.name, s.name, "virtual"),
      label: `${s.name} -> ${s.name} (rpc, self)`,
    });
    operations[s.operations[0]].calls.push(site);
  }
  // consumer operations: they may call the consumer's own dependencies, never produce again
  for (const q of consumerOf) {
    const s = services[q.service];
    const op = addOperation(s, KIND_CONSUMER, `${q.queue} process`, "", pickCalls(s, (c) => c.kind === CALL_MESSAGING || c.target === s.index));
    for (const site of q.site) (callSites[site] as { targetOp: number }).targetOp = op;
  }
  // a service that has call sites but whose operations picked none of some site still keeps the
  // site reachable: give every unused site to a random operation of its service
  const usedSites = new Set<number>(operations.flatMap((o) => o.calls));
  for (const c of callSites) {
    if (usedSites.has(c.index)) continue;
    const s = services[c.from];
    const candidates = s.operations.filter((o) => !(c.kind === CALL_RPC && c.target === s.index && o === c.targetOp));
    if (candidates.length > 0) operations[rng.pick(candidates)].calls.push(c.index);
  }

  return { seed: opts.seed, services, operations, callSites, slots, entryOperations, databases, queues, externals };
}
