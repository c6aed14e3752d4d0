import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // onnxruntime uses all cores per session; two test files at a time keeps a 2-core box responsive.
    maxWorkers: 2,
    // Tests that load onnxruntime directly must not leave its telemetry files either (see src/util/ort-env.ts).
    env: { ORT_DISABLE_TELEMETRY: '1' },
  },
});
