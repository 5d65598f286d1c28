import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    pool: "forks",
    // tracefold processes the tests start serve /metrics on a free port, not all on 9464
    env: { TRACEFOLD_HTTP_LISTEN: "127.0.0.1:0" },
  },
});
