// The incident-response scenarios of the bench (issue 19), on their own versioned bucket of
// (at most) 10,000 objects of the data set, in one run:
//
// (a) rollback of the bucket after 30 % of its objects were overwritten, against
//     `restore --in-place` of the same scope and against a copy of everything (a GET+PUT loop,
//     and a server-side CopyObject of every key's version, as copy-based point-in-time tools
//     do). Between the variants the same 30 % are overwritten again, untimed. Every variant's
//     S3 and repository traffic goes through the counting proxy: requests by class (CopyObject
//     apart from PUT) and the object bytes that moved through the client.
// (b) anomaly detection's CPU cost: seed and incremental runs (the incremental records the 30 %
//     overwrite) of the same bucket into repositories whose policy has `anomaly: { enabled:
//     false }` and into ones with the default, `repeats` pairs, alternating which goes first;
//     the child's CPU seconds (user + system) and the requests the proxy counted.
//
// Order: upload, (b) seeds, instant T, the incident, (b) incrementals, then (a): rollback
// --at T, restore --in-place --at T, copy-all --at T (GET+PUT, then CopyObject), each after the
// incident is applied again.
//
// The false positives of (c) are counted by run.mjs on the main data set's ordinary
// incremental runs (see ordinaryRuns there).
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PutBucketVersioningCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { mix, smallBody } from './dataset.mjs';
import { forEachLimit } from './pool.mjs';
import { startProxy } from './proxy.mjs';
import { S3, dropVersionedBucket, ensureBucket, listAll } from './s3.mjs';

/** The issue's scenario size; smaller data sets (smoke runs) use all their small objects. */
export const ROLLBACK_OBJECTS = 10_000;
/** Share of the objects the "incident" of scenario (a) overwrites. */
const CHANGED_PERCENT = 30;

const md5 = (b) => createHash('md5').update(b).digest('hex');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Object bytes that moved through the client in one step, from the proxy's per-bucket counts:
 * bodies GET from and PUT to the lake bucket, and pack bytes read from or written to the
 * repository (its packs/ GETs are ranged reads of object data). Listings, manifests, locks
 * and CopyObject requests (no body) are not object bytes.
 */
function clientObjectBytes(counts, lakeBucket, repoBucket) {
  const at = (op, bucket) => counts.byBucket[`${op} ${bucket}`] ?? { requests: 0, up: 0, down: 0 };
  const packs = Object.entries(counts.bytesByPrefix).filter(([k]) => k.startsWith(`get ${repoBucket}/`) && k.endsWith('/packs/'));
  const packGets = Object.entries(counts.byPrefix).filter(([k]) => k.startsWith(`get ${repoBucket}/`) && k.endsWith('/packs/'));
  return {
    lake: at('get', lakeBucket).down + at('put', lakeBucket).up,
    packs: packs.reduce((s, [, b]) => s + b.down, 0),
    packGets: packGets.reduce((s, [, n]) => s + n, 0),
    /** Everything else the repository sent (config, index, manifests, locks). */
    repositoryOther: at('get', repoBucket).down - packs.reduce((s, [, b]) => s + b.down, 0),
  };
}

/**
 * Runs scenarios (a) and (b). `ctx` is run.mjs's toolbox: step/row record results, lakeguard
 * runs the CLI with a given policy and catalog, runTool runs a bench tool.
 * @param {{
 *   s3: import('@aws-sdk/client-s3').S3Client, ds: any, tag: string, work: string, repoBucket: string,
 *   concurrency: number, listConcurrency: number, repeats: number, meta: Record<string, any>,
 *   log: (msg: string) => void,
 *   step: (name: string, tool: string, fn: () => Promise<any>) => Promise<any>,
 *   row: (name: string, tool: string, m: any, fields: any) => any,
 *   lakeguard: (name: string, args: string[], options: { policy: string, catalog: string, okCodes?: number[] }) => Promise<{ m: any, summaries: any[], messages: any[] }>,
 *   runTool: (name: string, script: string, args: string[]) => Promise<{ m: any, out: any }>,
 * }} ctx
 */
export async function runIncidentScenarios(ctx) {
  const { s3, ds, tag, work, repoBucket, log, step, row, meta } = ctx;
  const entries = ds.small.slice(0, Math.min(ROLLBACK_OBJECTS, ds.small.length));
  const changed = entries.filter((e) => mix(ds.seed, 19, e.i) % 100 < CHANGED_PERCENT);
  const bucket = `lgbench-incident-${tag}`;
  /** @type {{ bucket: string, objects: number, changed: number, repeats: number, instant?: string, anomalyCpu: ReturnType<typeof cpuPair>[] }} */
  const info = { bucket, objects: entries.length, changed: changed.length, repeats: ctx.repeats, anomalyCpu: [] };
  meta.incident = info;
  const proxy = await startProxy({ upstream: S3.endpoint, byPrefixDepth: 2 });
  try {
    await ensureBucket(s3, bucket);
    await s3.send(new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } }));
    log(`incident scenarios: ${entries.length} objects into versioned bucket ${bucket}, ${changed.length} (${CHANGED_PERCENT} %) to be overwritten`);
    const put = (list, version) =>
      forEachLimit(list, 64, (e) => s3.send(new PutObjectCommand({ Bucket: bucket, Key: e.key, Body: smallBody(ds, e, version), ContentType: 'application/octet-stream' })));
    await put(entries, 0);
    const original = new Map(entries.map((e) => [e.key, md5(smallBody(ds, e, 0))]));
    /** Throws unless every key of the bucket holds its original bytes again (ETag = MD5 of a single PUT). */
    const checkOriginal = async (what) => {
      let wrong = 0;
      let seen = 0;
      await listAll(s3, bucket, '', (contents) => {
        for (const o of contents) {
          seen++;
          if (o.ETag?.replaceAll('"', '') !== original.get(o.Key)) wrong++;
        }
      });
      if (wrong > 0 || seen !== entries.length) throw new Error(`after ${what}: ${wrong} of ${seen} keys differ from the original (expected ${entries.length} keys)`);
    };
    // One repository (prefix) and catalog per variant; lakeguard reaches both the lake and the
    // repository through the proxy.
    const variant = (name, anomalyOff) => {
      const dir = join(work, `incident-${name}`);
      mkdirSync(dir, { recursive: true });
      const policy = join(dir, 'lakeguard.yaml');
      writeFileSync(
        policy,
        [
          'version: 1',
          'repository:',
          `  url: s3://${repoBucket}/incident-${name}`,
          `  endpoint: ${proxy.endpoint}`,
          's3:',
          `  endpoint: ${proxy.endpoint}`,
          'groups:',
          '  - name: lake',
          '    sources:',
          `      - bucket: ${bucket}`,
          `concurrency: { list: ${ctx.listConcurrency}, transfer: ${ctx.concurrency} }`,
          ...(anomalyOff ? ['anomaly: { enabled: false }'] : []),
          '',
        ].join('\n'),
      );
      return { name, anomalyOff, policy, catalog: join(dir, 'catalog.db') };
    };
    const pairs = Array.from({ length: ctx.repeats }, (_, i) => ({ on: variant(`on-${i}`, false), off: variant(`off-${i}`, true) }));
    const lg = (name, v, args, okCodes) => ctx.lakeguard(name, args, { policy: v.policy, catalog: v.catalog, okCodes });
    /** One measured lakeguard backup: CPU, requests (lakeguard's own and the proxy's), suspect or not. */
    const backup = async (name, v) => {
      proxy.take();
      const { m, summaries, messages } = await lg(name, v, ['backup'], [0, 4]);
      const counts = proxy.take();
      const s = summaries.at(-1);
      if (!s) throw new Error(`${name}: no summary`);
      const suspect = m.code === 4;
      return { m, s, counts, suspect, anomalies: messages.filter((x) => x.message_type === 'anomaly').length };
    };
    const backupRow = (name, r) =>
      row(name, 'lakeguard', r.m, {
        objects: r.s.counters.objectsSeen,
        bytes: r.s.counters.bytesRead,
        requests: proxyRequests(r.counts),
        engineMs: r.s.counters.durationMs,
        extra: { runId: r.s.runId, suspect: r.suspect, anomalyMessages: r.anomalies, counters: r.s.counters, proxy: r.counts },
      });

    // Step and row names: the first pair's runs are rows; later pairs only feed the CPU ratios.
    const stepName = (what, v, i) => `anomaly-${what}-${v.anomalyOff ? 'off' : 'on'}${i === 0 ? '' : `-${i}`}`;
    /** Backs up every repository once, alternating which of a pair goes first. */
    const backupAll = async (what, results) => {
      for (const [i, p] of pairs.entries()) {
        for (const v of (i + (what === 'seed' ? 0 : 1)) % 2 === 0 ? [p.off, p.on] : [p.on, p.off]) {
          const name = stepName(what, v, i);
          await step(name, 'lakeguard', async () => {
            const r = await backup(name, v);
            results[i][`${what}${v.anomalyOff ? 'Off' : 'On'}`] = r;
            if (i === 0) backupRow(name, r);
          });
        }
      }
    };
    /** @type {Record<string, any>[]} per pair: seedOn, seedOff, incrementalOn, incrementalOff */
    const results = pairs.map(() => ({}));
    for (const p of pairs) for (const v of [p.off, p.on]) await step(`init-${v.name}`, 'lakeguard', () => lg(`init-${v.name}`, v, ['init']));

    // (b) seeds, then the instant every variant of (a) goes back to, then the incident (30 %
    // overwritten) and (b) incrementals that record it.
    await backupAll('seed', results);
    await sleep(1500);
    const instant = new Date().toISOString();
    info.instant = instant;
    await sleep(1500);
    const mutate = () => put(changed, 2);
    await mutate();
    await backupAll('incremental', results);
    info.anomalyCpu = results.map(cpuPair);

    // (a) each way back to the instant, from the same incident (re-applied, untimed, before each).
    let first = true;
    const measureVariant = async (name, tool, fn) => {
      if (!first) await mutate();
      first = false;
      proxy.take();
      const { m, objects, extra } = await fn();
      const counts = proxy.take();
      await checkOriginal(name);
      const bytes = clientObjectBytes(counts, bucket, repoBucket);
      return row(name, tool, m, { objects, bytes: bytes.lake + bytes.packs, requests: proxyRequests(counts), extra: { ...extra, clientBytes: bytes, proxy: counts } });
    };
    const on0 = pairs[0].on;
    await step('rollback', 'lakeguard', () =>
      measureVariant('rollback', 'lakeguard', async () => {
        const { m, summaries } = await lg('rollback', on0, ['rollback', '--bucket', bucket, '--at', instant]);
        return { m, objects: changed.length, extra: { summary: summaries.at(-1) ?? null } };
      }),
    );
    await step('restore-in-place', 'lakeguard', () =>
      measureVariant('restore-in-place', 'lakeguard', async () => {
        const { m, summaries } = await lg('restore-in-place', on0, ['restore', '--bucket', bucket, '--in-place', '--at', instant]);
        const s = summaries.at(-1) ?? {};
        if (s.restored !== changed.length) throw new Error(`restore --in-place restored ${s.restored} objects, expected ${changed.length}`);
        return { m, objects: s.restored, extra: { summary: s } };
      }),
    );
    for (const mode of ['get-put', 'copy']) {
      const name = `copy-all-${mode}`;
      await step(name, name, () =>
        measureVariant(name, name, async () => {
          const { m, out } = await ctx.runTool(name, 'copy-all.mjs', ['--bucket', bucket, '--at', instant, '--mode', mode, '--concurrency', String(ctx.concurrency), '--endpoint', proxy.endpoint]);
          if (out.objects !== entries.length) throw new Error(`copy-all put back ${out.objects} keys, expected ${entries.length}`);
          return { m, objects: out.objects, extra: { tool: out } };
        }),
      );
    }
  } finally {
    await proxy.close();
    const err = await dropVersionedBucket(s3, bucket);
    if (err) meta.notes.push(`cleanup: ${err}`);
  }
}

/** The proxy's counts as a row's requests (copy apart from put). */
function proxyRequests(c) {
  return { list: c.list, get: c.get, head: c.head, put: c.put, copy: c.copy, post: c.post, delete: c.delete };
}

/** CPU seconds and requests of one on/off pair (seed and incremental). */
function cpuPair(r) {
  const cpu = (x) => (x?.m.userS == null ? null : Math.round((x.m.userS + x.m.sysS) * 100) / 100);
  const reqs = (x) => (x ? proxyRequests(x.counts) : null);
  return {
    seedOn: cpu(r.seedOn),
    seedOff: cpu(r.seedOff),
    incrementalOn: cpu(r.incrementalOn),
    incrementalOff: cpu(r.incrementalOff),
    seedRequestsOn: reqs(r.seedOn),
    seedRequestsOff: reqs(r.seedOff),
    incrementalRequestsOn: reqs(r.incrementalOn),
    incrementalRequestsOff: reqs(r.incrementalOff),
    /** Whether the default thresholds flagged the 30 % overwrite (expected: an incident). */
    incrementalSuspect: r.incrementalOn?.suspect ?? null,
  };
}
