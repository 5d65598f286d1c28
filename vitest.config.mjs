import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    pool: "forks",
    // kafkajs's read_committed fix must be installed before any test loads kafkajs
    setupFiles: ["./test/support/kafkajs-patch-setup.ts"],
    // tracefold processes the tests start serve /metrics on a free port, not all on 9464
    env: { TRACEFOLD_HTTP_LISTEN: "127.0.0.1:0" },
  },
});
