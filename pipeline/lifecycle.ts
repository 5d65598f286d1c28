/**
 * What every long-running process of tracefold does the same way: serve /metrics, /livez and
 * /readyz on http.listen, and drain on SIGTERM/SIGINT within runtime.drainTimeoutMs (a second
 * signal exits at once).
 */
import type { Server } from "node:http";
import { httpListen, type Config } from "./config.js";
import type { Logger } from "./contracts.js";
import { startHealthServer } from "./http.js";

export async function serveHealth(cfg: Config, log: Logger, h: Parameters<typeof startHealthServer>[2]): Promise<Server | null> {
  const listen = httpListen(cfg);
  if (!listen) return null;
  const server = await startHealthServer(listen.host, listen.port, h);
  const a = server.address();
  log.info("serving /metrics, /livez, /readyz", { address: typeof a === "object" && a ? `${a.address}:${a.port}` : String(a) });
  return server;
}

export const closeServer = (server: Server | null) => new Promise<void>((r) => (server ? server.close(() => r()) : r()));

/**
 * SIGTERM/SIGINT: `drain()` once (stop fetching, checkpoint without closing windows, leave);
 * `overBudget()` if the drain takes longer than runtime.drainTimeoutMs; a second signal exits.
 * Returns the uninstaller.
 */
export function onStopSignals(cfg: Config, log: Logger, drain: () => void, overBudget: () => void): () => void {
  let signalled = 0;
  let timer: NodeJS.Timeout | null = null;
  const onSignal = (sig: string) => {
    signalled++;
    if (signalled > 1) {
      log.warn("second signal: exiting now", { signal: sig });
      process.exit(130);
    }
    const budget = cfg["runtime.drainTimeoutMs"] as number;
    log.info("stopping: no more input is read; open windows are kept, not closed", { signal: sig, drainBudgetMs: budget });
    drain();
    timer = setTimeout(() => {
      log.error("drain budget exceeded", { drainBudgetMs: budget });
      overBudget();
    }, budget);
    timer.unref();
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  return () => {
    if (timer) clearTimeout(timer);
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
  };
}
