// The side-by-side engine tools (bench/tools/seed-cpu.mjs, rss-s3.mjs): their engines, data set and
// environment, and one engine's lakeguard set-up:
// a policy whose group `small` backs up the data set's small objects (its table prefixes of the
// source bucket) into a repository at `repoUrl`, and the catalog path and environment to run it.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describeDataset } from './dataset.mjs';
import { S3, s3Client } from './s3.mjs';
import { ensureDataset, sourceBucketName } from './upload.mjs';

/** The engine directories of `--engines DIR[,DIR...]`, resolved. */
export function enginesOf(arg) {
  const engines = (arg ?? '').split(',').filter(Boolean).map((e) => resolve(e));
  if (engines.length === 0) throw new Error('--engines DIR[,DIR...] is required');
  return engines;
}

/** The data set at this seed and scale, uploaded to its source bucket unless already there. */
export async function smallDataset({ seed, scale, log }) {
  const s3 = s3Client({ sockets: 64 });
  const ds = describeDataset({ seed, scale });
  const src = sourceBucketName(seed, scale);
  await ensureDataset(s3, ds, { bucket: src, concurrency: 64, log });
  return { s3, ds, src };
}

/** The environment of a measured process: this node first on PATH, the S3 server's keys. */
export function engineEnv() {
  return {
    PATH: `${dirname(process.execPath)}:${process.env.PATH}`,
    HOME: process.env.HOME,
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    AWS_ACCESS_KEY_ID: S3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: S3.secretAccessKey,
    AWS_REGION: S3.region,
    LAKEGUARD_S3_ENDPOINT: S3.endpoint,
  };
}

/** Writes `<work>/<name>.yaml`; returns the arguments and environment every command needs. */
export function smallGroupSetup({ work, name, repoUrl, src, tables, concurrency, env }) {
  const policy = join(work, `${name}.yaml`);
  writeFileSync(
    policy,
    `version: 1
repository:
  url: ${repoUrl}
  endpoint: ${S3.endpoint}
s3:
  endpoint: ${S3.endpoint}
groups:
  - name: small
    sources:
      - bucket: ${src}
        prefixes: [${tables.map((t) => JSON.stringify(t)).join(', ')}]
concurrency: { list: 8, transfer: ${concurrency} }
`,
  );
  const catalog = join(work, name, 'catalog.db');
  mkdirSync(dirname(catalog), { recursive: true });
  return {
    args: ['--policy', policy, '--catalog', catalog, '--json'],
    env: { ...env, LAKEGUARD_PASSWORD: 'lakeguard bench password', LAKEGUARD_CACHE_DIR: join(work, name, 'cache') },
  };
}
