// The versioned-bucket scenario of the bench (issue 22): a no-change incremental of a versioned
// bucket (2,000 keys, of the data set's small objects, each written 5 and then 10 times) against
// a bare listing of its current keys, in the same run; and the same run forced to list every
// version (`backup --full-versions`, what every incremental did before issue 22). The target:
// the no-change run <= 1.3x the listing, and flat as the history grows (10 versions vs 5).
//
// Each measurement is the median of three paired runs (a listing just before each backup).
// Bodies are short (the key and the version): what is measured is listing, not reading.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PutBucketVersioningCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { forEachLimit } from './pool.mjs';
import { S3, dropVersionedBucket, ensureBucket } from './s3.mjs';

/** Keys of the scenario's bucket (all small objects of smaller data sets). */
export const VERSIONED_KEYS = 2000;
/** Versions per key at the two measurements. */
export const VERSION_COUNTS = [5, 10];

const round3 = (x) => Math.round(x * 1000) / 1000;

/**
 * @param {{
 *   s3: import('@aws-sdk/client-s3').S3Client, ds: any, tag: string, work: string, repoBucket: string, engineDir: string,
 *   listConcurrency: number, concurrency: number, meta: Record<string, any>, log: (msg: string) => void,
 *   step: (name: string, tool: string, fn: () => Promise<any>) => Promise<any>,
 *   row: (name: string, tool: string, m: any, fields: any) => any,
 *   lakeguard: (name: string, args: string[], options: { policy: string, catalog: string, cacheDir?: string, okCodes?: number[] }) => Promise<{ m: any, summaries: any[], messages: any[] }>,
 *   runTool: (name: string, script: string, args: string[]) => Promise<{ m: any, out: any }>,
 * }} ctx
 */
export async function runVersionedScenarios(ctx) {
  const { s3, ds, tag, log, step, row, meta } = ctx;
  const keys = ds.small.slice(0, Math.min(VERSIONED_KEYS, ds.small.length)).map((e) => e.key);
  const bucket = `lgbench-versioned-${tag}`;
  const dir = join(ctx.work, 'versioned');
  mkdirSync(dir, { recursive: true });
  const policy = join(dir, 'policy.yaml');
  const where = { policy, catalog: join(dir, 'catalog.db'), cacheDir: join(dir, 'cache') };
  writeFileSync(
    policy,
    `version: 1
repository:
  url: s3://${ctx.repoBucket}/versioned
  endpoint: ${S3.endpoint}
s3:
  endpoint: ${S3.endpoint}
groups:
  - name: versioned
    sources:
      - bucket: ${bucket}
concurrency: { list: ${ctx.listConcurrency}, transfer: ${ctx.concurrency} }
`,
  );
  /** @type {{ bucket: string, keys: number, summary: any[], flat?: number, fullGrowth?: number }} */
  const info = { bucket, keys: keys.length, summary: [] };
  meta.versioned = info;
  let written = 0;
  const writeVersionsUpTo = async (n) => {
    for (; written < n; written++) {
      const v = written;
      await forEachLimit(keys, 64, (key) => s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: `${key} version ${v}\n` })));
    }
  };
  const backup = async (name, args = []) => {
    const { m, summaries } = await ctx.lakeguard(name, ['backup', ...args], where);
    const s = summaries.at(-1);
    if (!s) throw new Error('no summary printed');
    if (s.counters.objectsFailed > 0) throw new Error(`${s.counters.objectsFailed} objects failed`);
    return { m, c: s.counters };
  };
  const listing = (name) => ctx.runTool(name, 'list.mjs', ['--bucket', bucket, '--client', 'lean', '--engine-dir', ctx.engineDir]);

  try {
    await ensureBucket(s3, bucket);
    await s3.send(new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } }));
    log(`versioned scenario: ${keys.length} keys x ${VERSION_COUNTS.join(', then ')} versions in ${bucket}`);
    await ctx.lakeguard('versioned-init', ['init'], where);
    for (const [i, versions] of VERSION_COUNTS.entries()) {
      await writeVersionsUpTo(versions);
      await step(i === 0 ? 'versioned-seed' : `versioned-add-${versions}`, 'lakeguard', async () => {
        const { m, c } = await backup(i === 0 ? 'versioned-seed' : `versioned-add-${versions}`);
        const added = keys.length * (versions - (i === 0 ? 0 : VERSION_COUNTS[i - 1]));
        if (c.objectsNew !== added) throw new Error(`expected ${added} new versions, got ${c.objectsNew}`);
        return row(i === 0 ? 'versioned-seed' : `versioned-add-${versions}`, 'lakeguard', m, { objects: c.objectsNew, bytes: c.bytesRead, requests: c.requests, engineMs: c.durationMs, extra: { counters: c } });
      });
      /** @type {Record<string, any>} */
      const measured = { versions, versionsInBucket: keys.length * versions };
      /** @type {[kind: 'changed' | 'full', args: string[]][]} */
      const kinds = [['changed', []], ['full', ['--full-versions']]];
      for (const [kind, args] of kinds) {
        const name = `versioned-nochange-${kind === 'full' ? 'full-' : ''}${versions}`;
        await step(name, 'lakeguard', async () => {
          const runs = [];
          for (let r = 0; r < 3; r++) {
            const base = await listing(`${name}-listing-${r}`);
            if (base.out.objects !== keys.length) throw new Error(`listing saw ${base.out.objects} keys, expected ${keys.length}`);
            const run = await backup(`${name}-${r + 1}`, args);
            if (run.c.objectsNew + run.c.objectsChanged + run.c.objectsDeleted !== 0) throw new Error(`no-change run saw changes: ${JSON.stringify(run.c)}`);
            if (run.c.versionListing !== kind) throw new Error(`expected a '${kind}' version listing, the run did '${run.c.versionListing}'`);
            runs.push({ run, base, ratio: run.m.wallMs / base.m.wallMs });
          }
          const mid = [...runs].sort((a, b) => a.ratio - b.ratio)[1];
          measured[kind] = {
            ratio: round3(mid.ratio),
            ratios: runs.map((x) => round3(x.ratio)),
            wallMs: runs.map((x) => Math.round(x.run.m.wallMs)),
            listingMs: runs.map((x) => Math.round(x.base.m.wallMs)),
            listRequests: mid.run.c.requests.list,
            listingRequests: mid.base.out.requests.list,
          };
          if (kind === 'changed') {
            // The baseline gets its own row (the median pair's listing).
            row(`versioned-listing-${versions}`, 'lean-list', mid.base.m, { objects: mid.base.out.objects, bytes: null, requests: mid.base.out.requests, extra: { wallMsRuns: measured.changed.listingMs } });
          }
          return row(name, 'lakeguard', mid.run.m, { objects: mid.run.c.objectsSeen, bytes: 0, requests: mid.run.c.requests, engineMs: mid.run.c.durationMs, extra: { counters: mid.run.c, pairedRatios: measured[kind].ratios, wallMsRuns: measured[kind].wallMs, pairedListingMs: measured[kind].listingMs } });
        });
      }
      info.summary.push(measured);
      log(`versioned, ${versions} versions: no-change ${JSON.stringify(measured.changed)}; --full-versions ${JSON.stringify(measured.full)}`);
    }
    const [few, many] = info.summary;
    if (few?.changed && many?.changed) info.flat = round3(many.changed.ratio / few.changed.ratio);
    if (few?.full && many?.full) info.fullGrowth = round3(many.full.ratio / few.full.ratio);
  } finally {
    const err = await dropVersionedBucket(s3, bucket);
    if (err) meta.notes.push(`cleanup: ${err}`);
  }
}
