#!/usr/bin/env node
// The tracefold command: runs the compiled CLI (npm run build, or npm start, compiles it).
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const cli = new URL("../dist/pipeline/cli.js", import.meta.url);
if (!existsSync(fileURLToPath(cli))) {
  process.stderr.write("tracefold: not built yet; run `npm run build` (npm start and npm test build it for you)\n");
  process.exit(2);
}
const { main } = await import(cli.href);
process.exitCode = await main(process.argv.slice(2));
