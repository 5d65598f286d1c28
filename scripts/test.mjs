#!/usr/bin/env node
// The whole test suite: type-check and build, start the real services the integration tests use
// (Kafka, HBase, MariaDB: scripts/services.sh, or the endpoints given in KAFKA_BROKERS, HBASE_*,
// MYSQL_URL), run every vitest test, stop what was started, and close with the plain line CI
// reads: "N passed, N failed". A service that does not come up is a failure, never a skip.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const run = (cmd, args) => spawnSync(cmd, args, { cwd: root, stdio: "inherit" }).status ?? 1;

let failed = 0;
let passed = 0;
if (run("npx", ["tsc", "-p", "tsconfig.json"]) !== 0) {
  process.stderr.write("tests: the TypeScript build failed\n");
  failed++;
}
if (run("npx", ["tsc", "-p", "test/tsconfig.json", "--noEmit"]) !== 0) {
  process.stderr.write("tests: type-checking the tests failed\n");
  failed++;
}
const services = join(root, "scripts", "services.sh");
// services someone already runs are theirs: stop afterwards only if this run started them
const alreadyUp = spawnSync("bash", [services, "status"], { cwd: root, stdio: "ignore" }).status === 0;
const t0 = Date.now();
if (run("bash", [services, "up"]) !== 0) {
  process.stderr.write("tests: the services did not come up (see the message above); the integration tests will fail\n");
  failed++;
} else process.stderr.write(`tests: services up in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
// the native Kafka client (source.kafka.client=node-rdkafka, test/rdkafka-source.test.ts) lives in a
// per-user cache, never in node_modules: compiled once per machine (about 3 minutes), then instant
const tn = Date.now();
const native = spawnSync("bash", [join(root, "scripts", "ensure-native-kafka.sh")], { cwd: root, encoding: "utf8", maxBuffer: 256 << 20 });
if (native.status !== 0) {
  // the compiler's output only when it failed: its last lines say why
  process.stderr.write(`${(native.stderr ?? "").split("\n").slice(-60).join("\n")}\n${native.error ? String(native.error) + "\n" : ""}`);
  process.stderr.write("tests: installing node-rdkafka (bash scripts/ensure-native-kafka.sh) failed (see above); the node-rdkafka tests will fail\n");
  failed++;
} else process.stderr.write(`tests: node-rdkafka ready in ${((Date.now() - tn) / 1000).toFixed(0)} s\n`);
const dir = mkdtempSync(join(tmpdir(), "tracefold-test-"));
const report = join(dir, "vitest.json");
const status = run("npx", ["vitest", "run", "--reporter=default", "--reporter=json", `--outputFile.json=${report}`, ...process.argv.slice(2)]);
try {
  const r = JSON.parse(readFileSync(report, "utf8"));
  passed += r.numPassedTests;
  failed += r.numFailedTests + (r.numRuntimeErrorTestSuites ?? 0);
  if (r.numTotalTests === 0) failed++;
} catch {
  process.stderr.write("tests: vitest produced no report\n");
  failed++;
}
rmSync(dir, { recursive: true, force: true });
// a service that died during the run explains failures that follow: say which, with its log's end
const after = spawnSync("bash", [services, "status"], { cwd: root, encoding: "utf8" });
if (after.status !== 0) {
  process.stderr.write(`tests: a service was down after the run:\n${after.stdout}`);
  spawnSync("bash", ["-c", 'for f in .state/kafka/logs/kafka.log .state/hbase/logs/master.log .state/mariadb/logs/mariadbd.log; do [ -f "$f" ] && { echo "--- tail of $f"; tail -n 30 "$f"; }; done'], { cwd: root, stdio: "inherit" });
}
if (!alreadyUp && !process.env.TRACEFOLD_KEEP_SERVICES) run("bash", [services, "down"]);
if (status !== 0 && failed === 0) failed++;
process.stdout.write(`\n${passed} passed, ${failed} failed\n`);
process.exit(failed === 0 ? 0 : 1);
