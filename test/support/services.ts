/**
 * Endpoints of the real services the integration tests use: from the environment (a user's own
 * KAFKA_BROKERS / HBASE_* / MYSQL_URL) or from .state/services.env, written by
 * `scripts/services.sh up` (the test command runs it). A missing service is a failure with a clear
 * message, never a skip.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

const ROOT = join(import.meta.dirname, "..", "..");

function fileEnv(): Record<string, string> {
  const path = join(ROOT, ".state", "services.env");
  if (!existsSync(path)) return {};
  const out: Record<string, string> = {};
  for (const line of readFileSync(path, "utf8").split("\n")) {
    const m = /^(?:export\s+)?([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]] = m[2].replace(/^["']|["']$/g, "");
  }
  return out;
}

export function serviceEnv(name: string): string {
  const v = process.env[name] ?? fileEnv()[name];
  if (!v)
    throw new Error(
      `${name} is not set and .state/services.env does not name it: the real service is not running. ` +
        `Run the tests with \`npm test\` (it starts Kafka, HBase and MariaDB), or start them with \`bash scripts/services.sh up\`, or point ${name} at your own.`,
    );
  return v;
}
