import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['runner/**/*.test.ts', 'graders/**/*.test.ts', 'test/**/*.test.ts'],
    // Docker integration tests share one engine on a 2-core host: run files one after another.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 600_000,
    reporters: ['default'],
  },
});
