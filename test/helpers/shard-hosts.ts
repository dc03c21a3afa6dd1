// Hosts for the scale-out tests: every shard, and every host that looks at the result, is a
// lakeguard process with its own empty HOME (its catalog is ~/.cache/lakeguard), as a pod or a
// responder's laptop is; the repository is the only thing they share. Plus the checks the
// "Done when" of issue 20 asks of a run set: one run seen from a fresh host, and a restore of
// the whole bucket that is byte-identical to it.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { expect } from 'vitest';
import { messagesOf, runCli, summaryOf, type CliResult } from './cli.js';
import { differences, snapshotBucket } from './parquet-lake.js';
import { S3_TEST, testEnv } from './s3-env.js';

export const SHARDS_PASSWORD = 'scale out';

/** A fresh, empty HOME under `root` (named, so a failing test's leftovers say whose it was). */
export function emptyHome(root: string, name: string): string {
  const home = join(root, 'homes', name);
  mkdirSync(home, { recursive: true });
  return home;
}

/** The environment of a lakeguard process on its own host: the test server's keys, the password, HOME. */
export function hostEnv(home: string, extra: Record<string, string> = {}): Record<string, string> {
  return { ...testEnv(), LAKEGUARD_PASSWORD: SHARDS_PASSWORD, HOME: home, ...extra };
}

/** Runs the CLI as a host with its own HOME. */
export function onHost(policy: string, home: string): (...args: string[]) => Promise<CliResult> {
  return (...args) => runCli(['--policy', policy, ...args], hostEnv(home));
}

/**
 * A policy for the test server: the repository (1 MiB packs, so that a shard of a few MB writes
 * several) and one group `lake` of one bucket.
 */
export function writeShardsPolicy(file: string, opts: { repo: string; bucket: string }): string {
  writeFileSync(
    file,
    [
      'version: 1',
      'repository:',
      `  url: s3://${opts.repo}/lakeguard`,
      `  endpoint: ${S3_TEST.endpoint}`,
      '  pack_size: 1MiB',
      's3:',
      `  endpoint: ${S3_TEST.endpoint}`,
      'groups:',
      '  - name: lake',
      '    sources:',
      `      - bucket: ${opts.bucket}`,
      '',
    ].join('\n'),
  );
  return file;
}

/** The `run` lines of `runs --json`, failing with the output when the command fails. */
export function runsOf(r: CliResult): Record<string, any>[] {
  expect(r.code, r.stderr).toBe(0);
  return messagesOf(r, 'run');
}

/**
 * Restores the whole source bucket as run set `runId` recorded it into `target` (from a fresh
 * host) and checks every object against the source as it is now: bytes (SHA-256 and size),
 * content type and user metadata.
 */
export async function expectByteIdenticalRestore(s3: S3Client, cli: (...args: string[]) => Promise<CliResult>, opts: { source: string; target: string; runId: string; objects: number }): Promise<void> {
  const restored = await cli('restore', '--bucket', opts.source, '--at', opts.runId, '--to', `s3://${opts.target}/`, '--json');
  expect(restored.code, restored.stderr).toBe(0);
  expect(summaryOf(restored)).toMatchObject({ restored: opts.objects, failed: 0 });
  const [want, got] = await Promise.all([snapshotBucket(s3, opts.source), snapshotBucket(s3, opts.target)]);
  expect(want.size).toBe(opts.objects);
  expect(differences(want, got)).toEqual([]);
}

/** Every key of a bucket, in key order. */
export async function listKeys(s3: S3Client, bucket: string): Promise<string[]> {
  const keys: string[] = [];
  for (let token: string | undefined; ; ) {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
    for (const o of page.Contents ?? []) keys.push(o.Key!);
    if (!page.IsTruncated) return keys;
    token = page.NextContinuationToken;
  }
}
