import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // onnxruntime uses all cores per session; two test files at a time keeps a 2-core box responsive.
    maxWorkers: 2,
    // Agents the tests spawn listen for gRPC only where a test asks (port 8001 would collide).
    // Tests that load onnxruntime directly must not leave its telemetry files either (see src/util/ort-env.ts).
    env: { ORT_DISABLE_TELEMETRY: '1', GPU_AGENT_GRPC_PORT: '0' },
  },
});
