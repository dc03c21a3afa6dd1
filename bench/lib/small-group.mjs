// One engine's lakeguard set-up for the side-by-side tools (bench/tools/seed-cpu.mjs, rss-s3.mjs):
// a policy whose group `small` backs up the data set's small objects (its table prefixes of the
// source bucket) into a repository at `repoUrl`, and the catalog path and environment to run it.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { S3 } from './s3.mjs';

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
