import type { Config } from "./config.js";
import type { Logger } from "./contracts.js";
import { TracefoldError } from "./errors.js";

export async function runRepartitionJob(_cfg: Config, _log: Logger): Promise<number> {
  throw new TracefoldError("TF_CONFIG_INVALID", "runtime.shuffle=topic is not available yet", "config");
}
