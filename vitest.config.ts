import { defineConfig } from 'vitest/config';

// Two suites (STYLE.md 13): unit tests need nothing running; integration tests use the real
// embedded ClickHouse engine (chDB) and, when KAFKA_BROKERS is set, a real Kafka broker.
// TRICKY: chDB must never load in a worker thread (the process crashes when the worker exits),
// so every test file runs in a forked child process; each integration file uses its own data folder.
export default defineConfig({
  test: {
    pool: 'forks',
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.int.test.ts'],
          globalSetup: ['test/helpers/kafka-global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          // chDB allows one open data folder per process and is heavy to load: one file at a time.
          fileParallelism: false,
        },
      },
    ],
  },
});
