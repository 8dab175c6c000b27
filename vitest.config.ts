import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 180_000,
    // Real servers (DynamoDB Local, skopeo, podman) run beside the tests: keep to the machine's 2 cores.
    maxWorkers: 2,
  },
});
