import { configDefaults, defineConfig } from 'vitest/config';

// Integration files that must run alone (the `integration-serial` project, after everything
// else): their assertions hold a time bound that extra load from a neighbour file could
// stretch (object-lock: retention dates and nextDue within minutes; lock-loss: a lock lost
// within 20 s), they own a machine-wide daemon (Slurm clusters), or they prove the shared
// server itself (s3-server). Every other integration file is isolated (its own buckets with
// random names, temp dirs, catalog cache dirs, child processes killed by pid, env changes in
// its own forked worker only), so two of them run at once, beside the unit files.
const SERIAL = [
  'test/integration/object-lock.test.ts',
  'test/integration/lock-loss.test.ts',
  'test/integration/s3-server.test.ts',
  'test/integration/slurm.test.ts',
  'test/integration/shards-slurm.test.ts',
];
const INTEGRATION = ['test/integration/**/*.test.ts', 'test/storage/*.s3.test.ts'];
const INTEGRATION_SETUP = ['test/helpers/build.ts', 'test/helpers/s3-global-setup.ts'];

// Projects: unit tests need nothing but the filesystem; integration tests get the real S3
// server (Ceph RGW) booted once by the global setup, or reuse one already running. Unit and
// parallel integration files share one group of two workers (CI has two cores; an integration
// file mostly waits on the server and on child processes); the serial files run after them
// one at a time (vitest runs projects with fileParallelism: false last, alone).
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
          // Hang guards, not targets: a unit file that runs the CLI (scrypt, a child process)
          // beside two others on a loaded two-core machine took 10-65 s where it takes 2 s
          // alone, and vitest's default 10 s hook limit skipped a whole file once.
          testTimeout: 120_000,
          hookTimeout: 120_000,
          maxWorkers: 2,
        },
      },
      {
        test: {
          name: 'integration',
          include: INTEGRATION,
          exclude: [...configDefaults.exclude, ...SERIAL],
          globalSetup: INTEGRATION_SETUP,
          testTimeout: 300_000,
          hookTimeout: 300_000,
          maxWorkers: 2,
        },
      },
      {
        test: {
          name: 'integration-serial',
          include: SERIAL,
          globalSetup: INTEGRATION_SETUP,
          testTimeout: 300_000,
          hookTimeout: 300_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
