#!/usr/bin/env node
// The whole test suite: type-check and build, run every vitest test, and close with the plain
// line CI reads: "N passed, N failed". Later issues add the services (Kafka, HBase, MySQL) here.
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
if (status !== 0 && failed === 0) failed++;
process.stdout.write(`\n${passed} passed, ${failed} failed\n`);
process.exit(failed === 0 ? 0 : 1);
