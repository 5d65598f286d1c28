/**
 * The `stores` scenario (issue 5, 3e): through Kafka into the real sinks, HBase (trace details and
 * the entry-span index) and MySQL (aggregates, offsets and checkpoints in one transaction), then
 * MySQL's totals checked against the generator's exact truth (`tracefold topology --json` and
 * pipeline/truth-check.ts, as the integration tests do): lost or double-counted spans show up as
 * differences, so "exact" means none.
 *
 * The stores are private instances (scripts/services.sh on their own ports and state folder,
 * never the shared test services), started once for the run and stopped at the end.
 */
import { spawnSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import mysql from "mysql2/promise";
import { Interner } from "../../pipeline/intern.js";
import { checkAgainstTruth } from "../../pipeline/truth-check.js";
import { ReplayGenerator } from "../../sources/replay/generator.js";
import type { ReplayTruth } from "../../sources/replay/truth.js";
import type { ReplaySpec } from "./replay-cache.js";

const PRIVATE_ENV = {
  TRACEFOLD_STATE_DIR: "/tmp/bench-stores-state",
  TRACEFOLD_HBASE_THRIFT_PORT: "29090",
  TRACEFOLD_HBASE_REST_PORT: "28080",
  TRACEFOLD_HBASE_ZK_PORT: "22181",
  TRACEFOLD_HBASE_MASTER_PORT: "26100",
  TRACEFOLD_HBASE_RS_PORT: "26120",
  TRACEFOLD_MYSQL_PORT: "23306",
};

export interface Stores {
  thrift: string;
  mysqlUrl: string;
}

function services(root: string, verb: "up" | "down"): string {
  const env: NodeJS.ProcessEnv = { ...process.env, ...PRIVATE_ENV };
  // else services.sh would use the given endpoints instead of starting its own
  for (const k of ["HBASE_THRIFT", "HBASE_REST", "HBASE_ZK", "MYSQL_URL"]) delete env[k];
  const r = spawnSync("bash", [join(root, "scripts", "services.sh"), verb, "hbase", "mysql"], { env, encoding: "utf8" });
  if (r.status !== 0 && verb === "up") throw new Error(`services.sh up hbase mysql failed: ${(r.stderr || r.stdout).slice(-2000)}`);
  return r.stdout;
}

/** Private HBase + MariaDB for the run (given endpoints win: --hbase-thrift / --mysql-url). */
export function startPrivateStores(root: string): Stores {
  services(root, "up");
  const env = readFileSync(join(PRIVATE_ENV.TRACEFOLD_STATE_DIR, "services.env"), "utf8");
  const get = (k: string) => new RegExp(`^(?:export\\s+)?${k}=["']?([^"'\\n]+)`, "m").exec(env)?.[1] ?? "";
  return { thrift: get("HBASE_THRIFT"), mysqlUrl: get("MYSQL_URL") };
}

export function stopPrivateStores(root: string): void {
  services(root, "down");
  rmSync(PRIVATE_ENV.TRACEFOLD_STATE_DIR, { recursive: true, force: true });
}

/** A connection to the server of a mysql:// URL, no database selected. */
function serverConnection(u: URL): Promise<mysql.Connection> {
  return mysql.createConnection({ host: u.hostname, port: Number(u.port || 3306), user: decodeURIComponent(u.username), password: decodeURIComponent(u.password) });
}

/** A fresh database on the server of `url`; returns its URL. */
export async function freshDatabase(url: string, name: string): Promise<string> {
  const u = new URL(url);
  const conn = await serverConnection(u);
  try {
    await conn.query(`DROP DATABASE IF EXISTS \`${name}\``);
    await conn.query(`CREATE DATABASE \`${name}\``);
  } finally {
    await conn.end();
  }
  u.pathname = `/${name}`;
  return u.toString();
}

export async function dropDatabase(url: string): Promise<void> {
  const u = new URL(url);
  const conn = await serverConnection(u);
  try {
    await conn.query(`DROP DATABASE IF EXISTS \`${u.pathname.slice(1)}\``);
  } finally {
    await conn.end();
  }
}

/** The generator's truth for a cached replay: the same generator, driven the same way (replay-cache.ts). */
export function replayTruth(spec: ReplaySpec): ReplayTruth {
  const gen = new ReplayGenerator({ seed: spec.seed, services: spec.services, partitions: spec.partitions, tracesPerSecond: spec.tracesPerSecond }, new Interner());
  let spans = 0;
  while (spans < spec.spans) spans += gen.generate(Math.min(100_000, spec.spans - spans), () => {});
  return gen.truth;
}

/** MySQL's topology against the truth: "exact", or the number of differences and the first ones. */
export function checkMysql(root: string, url: string, truth: ReplayTruth): { ok: boolean; text: string } {
  const out = spawnSync(process.execPath, [join(root, "bin", "tracefold.mjs"), "topology", "--mysql-url", url, "--json"], { cwd: root, encoding: "utf8", maxBuffer: 256 << 20 });
  if (out.status !== 0) return { ok: false, text: `topology failed: ${out.stderr.slice(-300)}` };
  const d = checkAgainstTruth(JSON.parse(out.stdout), truth).differences;
  return d.length === 0
    ? { ok: true, text: "MySQL totals = truth (every edge, failure, service and trace count; 0 lost, 0 double-counted)" }
    : { ok: false, text: `MySQL totals: ${d.length} differences from the truth, e.g. ${d.slice(0, 2).join("; ")}` };
}
