import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    setupFiles: ['test/setup-temp-dirs.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Native kernels already use every core; two test files at a time keeps CI (2 cores) responsive.
    pool: 'forks',
    maxWorkers: 2,
  },
});
