import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    environment: "jsdom",
    include: ["tests/**/*.test.ts"],
    css: false,
    // the suite shares a loaded machine with real FLAREs and browsers: a slow run is not a failure
    testTimeout: 30_000,
  },
});
