import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    // Recording tests run real browsers, Xvfb, ffmpeg and Janus on a 2-core machine: one file at a time.
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: "forks",
    // Removes the scratch directories each file made (test/helpers/scratch.ts).
    setupFiles: ["test/helpers/setup.ts"],
    reporters: ["default"],
  },
});
