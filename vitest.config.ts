import { defineConfig } from 'vitest/config';

// Two projects: unit tests need nothing but the filesystem; integration tests get the real
// S3 server (Ceph RGW) booted once by the global setup, or reuse one already running.
export default defineConfig({
  test: {
    // The JSON report is what .ci/run counts ("N passed, N failed").
    reporters: ['default', 'json'],
    outputFile: { json: '.test-results/vitest.json' },
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    projects: [
      {
        test: {
          name: 'unit',
          globalSetup: ['test/helpers/build.ts'],
          include: ['test/unit/**/*.test.ts', 'test/storage/*.unit.test.ts'],
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts', 'test/storage/*.s3.test.ts'],
          globalSetup: ['test/helpers/build.ts', 'test/helpers/s3-global-setup.ts'],
          testTimeout: 300_000,
          hookTimeout: 300_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
