// Turns the measured rows into ratios, target checks (PASS/FAIL with the numbers) and a table.
// The targets are those of issues 6, 19 and 22; they are checked as written, never relaxed here.

const MB = 1e6;

export function rate(n, ms) {
  return ms > 0 ? n / (ms / 1000) : null;
}

const fmt = (v, d = 1) => (v === null || v === undefined || Number.isNaN(v) ? '-' : typeof v === 'number' ? v.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }) : String(v));
const int = (v) => (v === null || v === undefined ? '-' : Math.round(v).toLocaleString('en-US'));

/** Ratios of lakeguard scenarios to the baselines measured in the same run. */
export function ratios(rows) {
  const r = Object.fromEntries(rows.filter((x) => x.wallMs !== undefined).map((x) => [x.name, x]));
  const out = [];
  const add = (name, value, text) => value !== null && Number.isFinite(value) && out.push({ name, value: Math.round(value * 1000) / 1000, text });
  if (r['seed-small'] && r['raw-get-small']) add('seed-small/raw-get objects/s', r['seed-small'].objectsPerS / r['raw-get-small'].objectsPerS, 'seed backup (small) objects/s ÷ raw GET objects/s');
  const cpuPerObject = (x) => (x?.cpuS == null || x.serverCpuS == null || !x.objects ? null : (x.cpuS + x.serverCpuS) / x.objects);
  const seedCpuPerObject = cpuPerObject(r['seed-small']);
  const rawGetCpuPerObject = cpuPerObject(r['raw-get-small']);
  if (seedCpuPerObject && rawGetCpuPerObject) {
    add('seed-small/raw-get CPU per object', seedCpuPerObject / rawGetCpuPerObject, 'CPU per object of the tool and the S3 server together (they share the cores): seed ÷ raw GET');
  }
  if (r['seed-small'] && r['raw-get-sdk-small']) add('seed-small/raw-get-sdk objects/s', r['seed-small'].objectsPerS / r['raw-get-sdk-small'].objectsPerS, 'seed backup (small) objects/s ÷ raw GET objects/s through the AWS SDK');
  if (r['seed-large'] && r['raw-get-large']) add('seed-large/raw-get MB/s', r['seed-large'].MBps / r['raw-get-large'].MBps, 'seed backup (large) MB/s ÷ raw GET MB/s');
  if (r['seed-small'] && r['restic-small']) add('restic-small/seed-small time', r['restic-small'].wallMs / r['seed-small'].wallMs, 'restic time ÷ lakeguard time, small objects (>1: lakeguard faster)');
  if (r['seed-large'] && r['restic-large']) add('restic-large/seed-large time', r['restic-large'].wallMs / r['seed-large'].wallMs, 'restic time ÷ lakeguard time, large objects (>1: lakeguard faster)');
  if (r['seed-small'] && r['seed-large'] && r['rclone-copy']) add('rclone/seed time', r['rclone-copy'].wallMs / (r['seed-small'].wallMs + r['seed-large'].wallMs), 'rclone copy time ÷ lakeguard seed time, whole bucket (>1: lakeguard faster)');
  if (r['seed-small'] && r['rclone-copy']) add('seed PUTs/rclone PUTs', (r['seed-small'].requests.put + (r['seed-large']?.requests.put ?? 0)) / (r['rclone-copy'].requests.put + r['rclone-copy'].requests.post), 'repository PUTs ÷ rclone PUT+POST requests');
  const paired = r['incremental-nochange']?.extra?.pairedRatios;
  if (paired?.length) add('nochange/listing time', [...paired].sort((a, b) => a - b)[Math.floor(paired.length / 2)], 'no-change incremental time ÷ bare listing time (median of paired runs)');
  else if (r['incremental-nochange'] && r.listing) add('nochange/listing time', r['incremental-nochange'].wallMs / r.listing.wallMs, 'no-change incremental time ÷ bare listing time');
  const changedListing = r['listing-after-change'] ?? r.listing;
  if (r['incremental-changed'] && changedListing) add('changed/listing time', r['incremental-changed'].wallMs / changedListing.wallMs, '1 %-changed incremental time ÷ bare listing time');
  if (r['restore-full'] && r['rclone-copy']) add('restore-full/rclone time', r['restore-full'].wallMs / r['rclone-copy'].wallMs, 'full restore time ÷ rclone copy time (<1: lakeguard faster)');
  for (const base of ['restore-in-place', 'copy-all-get-put', 'copy-all-copy']) {
    if (r.rollback && r[base]) add(`rollback/${base} time`, r.rollback.wallMs / r[base].wallMs, `rollback time ÷ ${base} time, same bucket and change (<1: rollback faster)`);
  }
  for (const n of [2, 4]) {
    const x = r[`shards-${n}`];
    if (x && r['shards-1']) add(`shards-${n}/shards-1 objects/s`, x.objectsPerS / r['shards-1'].objectsPerS, `seed by ${n} shard processes ÷ by 1 process, objects/s (same bucket, same machine)`);
    const cpu = (y) => (y?.cpuS == null || !y.objects ? null : y.cpuS / y.objects);
    const [cpuN, cpu1] = [cpu(x), cpu(r['shards-1'])];
    if (cpuN && cpu1) add(`shards-${n}/shards-1 CPU per object`, cpuN / cpu1, `lakeguard CPU per object, ${n} shard processes ÷ 1 process (>1: what sharding costs)`);
  }
  // Issue 22's restore and local-file targets (>= 0.8, >= 2, >= 1, >= 1).
  if (r['restore-full'] && r['copy-loop']) add('copy-loop/restore-full time', r['copy-loop'].wallMs / r['restore-full'].wallMs, 'lean GET+PUT copy loop time ÷ full restore time, same objects (>= 0.8 wanted; >1: lakeguard faster)');
  if (r['restore-full'] && r['rclone-copy']) add('rclone/restore-full time', r['rclone-copy'].wallMs / r['restore-full'].wallMs, 'rclone copy time ÷ full restore time (>= 2 wanted)');
  if (r['restore-dir-local'] && r['restic-restore']) add('restic-restore/restore-dir-local time', r['restic-restore'].wallMs / r['restore-dir-local'].wallMs, 'restic restore time ÷ lakeguard restore --to-dir time, same small files (>= 1 wanted)');
  if (r['seed-dir'] && r['seed-dir-1thread']) add('seed-dir/seed-dir-1thread objects/s', r['seed-dir'].objectsPerS / r['seed-dir-1thread'].objectsPerS, 'seed of local files with LAKEGUARD_THREADS=auto ÷ with LAKEGUARD_THREADS=1 (>= 1.6 wanted on 2 cores)');
  if (r['seed-dir'] && r['restic-small']) add('restic-small/seed-dir time', r['restic-small'].wallMs / r['seed-dir'].wallMs, 'restic backup time ÷ lakeguard seed time, same local files, same proxy (>= 1 wanted)');
  if (r['restore-full'] && r['raw-get-small'] && r['raw-get-large']) add('restore-full/raw-get time', r['restore-full'].wallMs / (r['raw-get-small'].wallMs + r['raw-get-large'].wallMs), 'full restore time ÷ raw GET time of all objects');
  return out;
}

/**
 * The targets of issue 6. Each: {id, target, status: PASS|FAIL|NOT MEASURED, measured}.
 * `rssCompare`: {scale, peakRssMB} of a seed backup at another scale (for flatness).
 * @param rows
 * @param meta
 * @param {{ rssCompare?: { scale: number, peakRssMB: number } }} [options]
 */
export function checkTargets(rows, meta, { rssCompare } = {}) {
  const r = Object.fromEntries(rows.filter((x) => x.wallMs !== undefined).map((x) => [x.name, x]));
  const t = [];
  const add = (id, target, pass, measured) => t.push({ id, target, status: pass === null ? 'NOT MEASURED' : pass ? 'PASS' : 'FAIL', measured });
  /** An incremental run's wall time against a bare listing's: at most `limit` times as long. */
  const addListingRatio = (id, what, run, base, limit) =>
    add(
      id,
      `${what} <= ${limit}x the bare listing`,
      run && base ? run.wallMs <= limit * base.wallMs : null,
      run && base ? `${fmt(run.wallMs / 1000, 2)} s vs listing ${fmt(base.wallMs / 1000, 2)} s = ${fmt(run.wallMs / base.wallMs, 2)}x (need <= ${limit}x)` : 'missing',
    );
  const small = meta.dataset.smallObjects;

  const seed = r['seed-small'];
  const raw = r['raw-get-small'];
  add(
    'seed-vs-raw-get',
    'seed backup of the small objects >= 0.8x the raw GET loop objects/s',
    seed && raw ? seed.objectsPerS >= 0.8 * raw.objectsPerS : null,
    seed && raw
      ? `${fmt(seed.objectsPerS)} vs ${fmt(raw.objectsPerS)} objects/s = ${fmt(seed.objectsPerS / raw.objectsPerS, 2)}x (need >= 0.80x)` +
          (r['raw-get-sdk-small'] ? `; the same loop through the AWS SDK: ${fmt(r['raw-get-sdk-small'].objectsPerS)} objects/s (${fmt(seed.objectsPerS / r['raw-get-sdk-small'].objectsPerS, 2)}x)` : '')
      : 'missing seed-small or raw-get-small',
  );
  const restic = r['restic-small'];
  add(
    'seed-vs-restic',
    'seed backup of the small objects faster than restic on the same files',
    seed && restic ? seed.wallMs < restic.wallMs : null,
    seed && restic ? `lakeguard ${fmt(seed.wallMs / 1000)} s vs restic ${fmt(restic.wallMs / 1000)} s` : 'restic baseline not run (--quick or --lakeguard-only)',
  );
  // With --repo-via-proxy the proxy's count of repository PUT+POST requests is used when it is
  // higher than lakeguard's own counter (it also sees lock and manifest writes).
  const seedPuts = seed ? Math.max(seed.requests.put, (seed.extra?.repositoryRequests?.put ?? 0) + (seed.extra?.repositoryRequests?.post ?? 0)) : 0;
  add(
    'puts-per-1000',
    'repository PUT requests <= 1 per 1,000 small objects',
    seed ? seedPuts <= small / 1000 : null,
    seed ? `${seedPuts} PUTs for ${small} small objects = ${fmt((seedPuts * 1000) / small, 2)} per 1,000${seed.extra?.counters ? ` (${seed.extra.counters.packsWritten} packs)` : ''}${r['rclone-copy'] ? `; rclone: ${r['rclone-copy'].requests.put + r['rclone-copy'].requests.post} PUT+POST for the bucket` : ''}` : 'missing seed-small',
  );
  const stored = meta.repositoryBytesAfterSeed;
  const source = meta.dataset.smallBytes + meta.dataset.largeBytes;
  add(
    'stored-ratio',
    'stored bytes <= 0.5x source bytes (default data set)',
    stored !== undefined && r['seed-large'] ? stored <= 0.5 * source : null,
    stored !== undefined ? `${fmt(stored / MB)} MB stored for ${fmt(source / MB)} MB = ${fmt(stored / source, 3)}x (need <= 0.5x)` : 'missing seed runs',
  );
  const nc = r['incremental-nochange'];
  const listing = r.listing;
  const paired = nc?.extra?.pairedRatios;
  if (paired?.length) {
    const median = [...paired].sort((a, b) => a - b)[Math.floor(paired.length / 2)];
    add(
      'incremental-nochange',
      'no-change incremental <= 1.2x the bare listing',
      median <= 1.2,
      `median of ${paired.length} paired runs ${fmt(median, 2)}x (need <= 1.2x): lakeguard ${nc.extra.wallMsRuns.map((x) => fmt(x / 1000, 2)).join(', ')} s vs listing just before ${nc.extra.pairedListingMs.map((x) => fmt(x / 1000, 2)).join(', ')} s`,
    );
  } else {
    addListingRatio('incremental-nochange', 'no-change incremental', nc, listing, 1.2);
  }
  addListingRatio('incremental-changed', '1 %-changed incremental', r['incremental-changed'], r['listing-after-change'] ?? listing, 1.5);
  const one = r['restore-single'];
  const oneGets = one ? Math.max(one.requests.get, one.extra?.repositoryRequests?.get ?? 0) : 0;
  add(
    'single-restore',
    `single-object restore from a ${small.toLocaleString('en-US')}-object run under 1 s with at most a handful (<= 5) of GETs`,
    one ? one.wallMs < 1000 && oneGets <= 5 : null,
    one ? `${fmt(one.wallMs, 0)} ms wall (engine ${fmt(one.engineMs, 0)} ms), ${oneGets} GET, ${one.requests.put} PUT` : 'missing',
  );
  const lgRows = rows.filter((x) => x.ok && x.tool === 'lakeguard' && x.peakRssMB !== null);
  const maxRss = lgRows.reduce((m, x) => Math.max(m, x.peakRssMB), 0);
  const maxRow = lgRows.find((x) => x.peakRssMB === maxRss);
  add('peak-rss', 'peak RSS below 300 MB (every lakeguard command)', lgRows.length ? maxRss < 300 : null, lgRows.length ? `max ${fmt(maxRss)} MB (${maxRow.name}); seed-small ${fmt(seed?.peakRssMB)} MB` : 'missing');
  if (rssCompare && seed) {
    const [lo, hi] = rssCompare.scale < meta.scale ? [rssCompare, { scale: meta.scale, peakRssMB: seed.peakRssMB }] : [{ scale: meta.scale, peakRssMB: seed.peakRssMB }, rssCompare];
    add(
      'peak-rss-flat',
      'peak RSS flat: 10x the objects uses not materially more memory (<= 1.2x)',
      hi.peakRssMB <= 1.2 * lo.peakRssMB && hi.peakRssMB < 300,
      `seed backup peak RSS ${fmt(lo.peakRssMB)} MB at scale ${lo.scale} vs ${fmt(hi.peakRssMB)} MB at scale ${hi.scale} = ${fmt(hi.peakRssMB / lo.peakRssMB, 2)}x`,
    );
  } else {
    add('peak-rss-flat', 'peak RSS flat: 10x the objects uses not materially more memory (<= 1.2x)', null, 'needs a second run at another scale (--rss-compare FILE)');
  }
  const cat = meta.catalog;
  add(
    'catalog-bytes-per-version',
    'catalog on disk <= 200 bytes per object version',
    cat ? cat.bytesPerVersion <= 200 : null,
    cat ? `${fmt(cat.totalBytes / MB, 2)} MB (db ${fmt(cat.dbBytes / MB, 2)} + wal ${fmt(cat.walBytes / MB, 2)}) for ${cat.versions} versions = ${fmt(cat.bytesPerVersion)} B/version` : 'missing',
  );
  incidentTargets(r, meta, add);
  // Issue 22: a versioned bucket's no-change incremental against a listing of its current keys (bench/lib/versioned.mjs).
  const versioned = meta.versioned?.summary ?? [];
  if (versioned.length > 0) {
    const last = versioned.at(-1);
    const measured = versioned.filter((v) => v.changed);
    add(
      'versioned-nochange',
      'no-change incremental of a versioned bucket <= 1.3x a listing of its current keys (median of 3 paired runs)',
      measured.length === versioned.length ? measured.every((v) => v.changed.ratio <= 1.3) : null,
      measured.map((v) => `${v.versions} versions: ${fmt(v.changed.ratio, 2)}x, ${v.changed.listRequests} LIST (listing ${v.changed.listingRequests})${v.full ? `; --full-versions ${fmt(v.full.ratio, 2)}x, ${v.full.listRequests} LIST` : ''}`).join('; ') || 'missing',
    );
    add(
      'versioned-flat',
      `versioned no-change ratio flat as history grows (${versioned.map((v) => v.versions).join(' vs ')} versions, <= 1.1x)`,
      meta.versioned.flat === undefined ? null : meta.versioned.flat <= 1.1,
      meta.versioned.flat === undefined ? `missing (${last.versions} versions not measured)` : `${fmt(meta.versioned.flat, 2)}x (--full-versions: ${fmt(meta.versioned.fullGrowth, 2)}x)`,
    );
  }
  return t;
}

const median = (xs) => {
  const s = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  return s.length === 0 ? null : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** The targets of issue 19 (bench/lib/incident.mjs and the ordinary runs of run.mjs). */
function incidentTargets(r, meta, add) {
  const rb = r.rollback;
  const mb = (x) => `${fmt(x / MB, 2)} MB`;
  const bytesOf = (x) => (x?.extra?.clientBytes ? x.extra.clientBytes.lake + x.extra.clientBytes.packs : null);
  const others = ['restore-in-place', 'copy-all-get-put', 'copy-all-copy'].filter((n) => r[n]).map((n) => `${n} ${mb(bytesOf(r[n]))}`);
  add(
    'rollback-client-bytes',
    'rollback moves no object bytes through the client when the versions exist in the source',
    rb?.ok && rb.extra?.clientBytes ? rb.extra.clientBytes.lake === 0 && rb.extra.clientBytes.packs === 0 : null,
    rb?.ok && rb.extra?.clientBytes
      ? `rollback: ${mb(bytesOf(rb))} of lake objects and packs (${rb.requests.copy} CopyObject, ${rb.requests.put} PUT, ${rb.requests.get} GET, ${rb.extra.clientBytes.packGets} pack GETs); ${others.join(', ')}`
      : 'rollback not measured',
  );
  const rip = r['restore-in-place'];
  add(
    'rollback-vs-restore',
    'rollback takes <= 0.3x the time of restore --in-place (same bucket, same 30 % change)',
    rb?.ok && rip?.ok ? rb.wallMs <= 0.3 * rip.wallMs : null,
    rb?.ok && rip?.ok ? `${fmt(rb.wallMs / 1000, 2)} s vs ${fmt(rip.wallMs / 1000, 2)} s = ${fmt(rb.wallMs / rip.wallMs, 2)}x (need <= 0.3x)` : 'rollback or restore-in-place not measured',
  );
  const pairs = meta.incident?.anomalyCpu ?? [];
  const seedRatio = median(pairs.map((p) => (p.seedOn && p.seedOff ? p.seedOn / p.seedOff : null)));
  const incrRatio = median(pairs.map((p) => (p.incrementalOn && p.incrementalOff ? p.incrementalOn / p.incrementalOff : null)));
  const pct = (x) => `${x >= 1 ? '+' : ''}${fmt((x - 1) * 100, 1)} %`;
  add(
    'anomaly-cpu',
    'anomaly detection adds <= 5 % CPU to a seed and to an incremental run',
    seedRatio !== null && incrRatio !== null ? seedRatio <= 1.05 && incrRatio <= 1.05 : null,
    seedRatio !== null && incrRatio !== null
      ? `median of ${pairs.length} pair(s), CPU s with / without: seed ${pct(seedRatio)} (${pairs.map((p) => `${fmt(p.seedOn, 2)}/${fmt(p.seedOff, 2)}`).join(', ')}), incremental ${pct(incrRatio)} (${pairs.map((p) => `${fmt(p.incrementalOn, 2)}/${fmt(p.incrementalOff, 2)}`).join(', ')})`
      : 'anomaly seeds or incrementals not measured',
  );
  const same = (a, b) => a !== null && b !== null && JSON.stringify(a) === JSON.stringify(b);
  const measuredPairs = pairs.filter((p) => p.seedRequestsOn && p.seedRequestsOff && p.incrementalRequestsOn && p.incrementalRequestsOff);
  const diffs = measuredPairs.filter((p) => !same(p.seedRequestsOn, p.seedRequestsOff) || !same(p.incrementalRequestsOn, p.incrementalRequestsOff));
  add(
    'anomaly-requests',
    'anomaly detection adds no S3 request (seed and incremental, counted by the proxy)',
    measuredPairs.length ? diffs.length === 0 : null,
    measuredPairs.length
      ? diffs.length === 0
        ? `${measuredPairs.length} pair(s): the same requests with and without (seed ${JSON.stringify(measuredPairs[0].seedRequestsOn)})`
        : `differs: ${diffs.map((p) => `seed ${JSON.stringify(p.seedRequestsOn)} vs ${JSON.stringify(p.seedRequestsOff)}; incremental ${JSON.stringify(p.incrementalRequestsOn)} vs ${JSON.stringify(p.incrementalRequestsOff)}`).join('; ')}`
      : 'not measured',
  );
  const ordinary = (meta.ordinaryRuns ?? []).filter((x) => x.name.startsWith('incremental'));
  const suspect = ordinary.filter((x) => x.suspect);
  const seeds = (meta.ordinaryRuns ?? []).filter((x) => !x.name.startsWith('incremental'));
  add(
    'false-positives',
    "the default anomaly thresholds flag none of the bench's ordinary incremental runs",
    ordinary.length ? suspect.length === 0 : null,
    ordinary.length
      ? `${suspect.length} of ${ordinary.length} ordinary incremental runs suspect${suspect.length ? ` (${suspect.map((x) => x.name).join(', ')})` : ''}; seeds: ${seeds.filter((x) => x.suspect).length} of ${seeds.length} suspect`
      : 'no ordinary incremental run',
  );
}

const HEAD = ['scenario', 'tool', 'wall s', 'objects', 'obj/s', 'MB/s', 'LIST', 'GET', 'HEAD', 'PUT', 'COPY', 'POST', 'DELETE', 'stored MB', 'RSS MB', 'CPU s', 'server CPU s'];

function cells(x) {
  if (x.wallMs === undefined) return [x.name, x.tool, 'FAILED', ...HEAD.slice(3).map(() => '')];
  return [
    x.ok ? x.name : `${x.name} (FAILED)`,
    x.tool,
    fmt(x.wallMs / 1000, 2),
    int(x.objects),
    fmt(x.objectsPerS, 0),
    fmt(x.MBps, 1),
    int(x.requests.list),
    int(x.requests.get),
    int(x.requests.head),
    int(x.requests.put),
    int(x.requests.copy ?? 0),
    int(x.requests.post),
    int(x.requests.delete),
    fmt(x.storedBytes === null ? null : x.storedBytes / MB, 1),
    fmt(x.peakRssMB, 0),
    fmt(x.cpuS, 1),
    fmt(x.serverCpuS, 1),
  ];
}

/** The results table; failed steps are named below it with their error. */
export function formatTable(rows) {
  const failed = rows.filter((x) => !x.ok);
  return table(HEAD, rows.map(cells)) + failed.map((x) => `\n  ${x.name} FAILED: ${x.error.slice(0, 300)}`).join('');
}

/** A plain-text table: the first `leftColumns` columns aligned left (names), the rest right (numbers). */
export function table(head, body, leftColumns = 2) {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => String(row[i]).length)));
  const line = (cells) => cells.map((c, i) => (i < leftColumns ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

export function formatMarkdown(rows) {
  const lines = [`| ${HEAD.join(' | ')} |`, `| ${HEAD.map((_, i) => (i < 2 ? '---' : '---:')).join(' | ')} |`];
  for (const x of rows) lines.push(`| ${cells(x).join(' | ')} |`);
  return lines.join('\n');
}

/**
 * Issue 22's table, one line per row (bench/README.md prints it with each run's numbers): each
 * {id, metric, target, status: PASS|FAIL|NOT MEASURED, measured}, checked as the issue wrote it.
 * `rssCompare`: the results of a run at another scale ({scale, rows}; --rss-compare FILE) for the
 * scale ratio of every command's peak RSS.
 * @param {any[]} rows
 * @param {any} meta
 * @param {{ rssCompare?: { scale: number, rows?: any[], file?: string } }} [options]
 */
export function checkIssue22Targets(rows, meta, { rssCompare } = {}) {
  const r = Object.fromEntries(rows.filter((x) => x.wallMs !== undefined && x.ok !== false).map((x) => [x.name, x]));
  const t = [];
  /** @param {boolean | null} pass */
  const add = (id, metric, target, pass, measured) => t.push({ id, metric, target, status: pass === null ? 'NOT MEASURED' : pass ? 'PASS' : 'FAIL', measured });
  const missing = (...names) => `not measured: ${names.filter((n) => !r[n]).join(', ')} missing${meta.mode ? ` (mode ${meta.mode})` : ''}`;
  const both = (a, b) => Boolean(r[a] && r[b]);

  // Client CPU per small object: the tool's own CPU (user + system), the S3 server's apart.
  const msPerObject = (x) => (x?.cpuS == null || !x.objects ? null : (x.cpuS * 1000) / x.objects);
  const seedMs = msPerObject(r['seed-small']);
  const rawMs = msPerObject(r['raw-get-small']);
  add(
    'cpu-per-object',
    'client CPU per small object, seed from S3',
    '<= 0.35 ms',
    seedMs === null ? null : seedMs <= 0.35,
    seedMs === null
      ? missing('seed-small')
      : `${fmt(seedMs, 3)} ms (${fmt(r['seed-small'].cpuS, 1)} s CPU for ${int(r['seed-small'].objects)} objects)${rawMs === null ? '' : `; raw GET loop ${fmt(rawMs, 3)} ms = ${fmt(seedMs / rawMs, 2)}x the loop`}`,
  );
  add(
    'seed-vs-raw-get',
    'seed from S3, objects/s ÷ lean raw GET loop',
    '>= 0.8x',
    both('seed-small', 'raw-get-small') ? r['seed-small'].objectsPerS >= 0.8 * r['raw-get-small'].objectsPerS : null,
    both('seed-small', 'raw-get-small')
      ? `${fmt(r['seed-small'].objectsPerS, 0)} vs ${fmt(r['raw-get-small'].objectsPerS, 0)} objects/s = ${fmt(r['seed-small'].objectsPerS / r['raw-get-small'].objectsPerS, 2)}x`
      : missing('seed-small', 'raw-get-small'),
  );
  /** A time ratio `base ÷ run` (>1: lakeguard faster) against `min`. */
  const faster = (id, metric, runName, baseName, min, extra = '') =>
    add(
      id,
      metric,
      `>= ${min}x`,
      both(runName, baseName) ? r[baseName].wallMs >= min * r[runName].wallMs : null,
      both(runName, baseName)
        ? `${baseName} ${fmt(r[baseName].wallMs / 1000, 2)} s ÷ ${runName} ${fmt(r[runName].wallMs / 1000, 2)} s = ${fmt(r[baseName].wallMs / r[runName].wallMs, 2)}x${extra}`
        : missing(runName, baseName),
    );
  faster('seed-dir-vs-restic', 'seed of a local directory ÷ restic on the same files', 'seed-dir', 'restic-small', 1);
  add(
    'threads',
    'CPU-bound local seed on all cores ÷ the same with one worker',
    '>= 1.6x',
    both('seed-dir', 'seed-dir-1thread') ? r['seed-dir'].objectsPerS >= 1.6 * r['seed-dir-1thread'].objectsPerS : null,
    both('seed-dir', 'seed-dir-1thread')
      ? `${fmt(r['seed-dir'].objectsPerS, 0)} vs ${fmt(r['seed-dir-1thread'].objectsPerS, 0)} objects/s = ${fmt(r['seed-dir'].objectsPerS / r['seed-dir-1thread'].objectsPerS, 2)}x (${meta.machine?.nproc ?? '?'} cores)`
      : missing('seed-dir', 'seed-dir-1thread'),
  );
  faster('restore-vs-copy-loop', 'full restore to S3 ÷ lean GET+PUT copy loop of the same objects', 'restore-full', 'copy-loop', 0.8);
  faster('restore-vs-rclone', 'full restore to S3 ÷ rclone copy', 'restore-full', 'rclone-copy', 2);
  faster('restore-dir-vs-restic', 'full restore to a directory ÷ restic restore of the same files', 'restore-dir-local', 'restic-restore', 1);

  // Incrementals against the bare listing (the paired median when the bench ran pairs).
  const changedBase = r['listing-after-change'] ?? r.listing;
  const changed = r['incremental-changed'];
  add(
    'incremental-changed',
    '1 %-changed incremental ÷ bare listing',
    '<= 1.5x',
    changed && changedBase ? changed.wallMs <= 1.5 * changedBase.wallMs : null,
    changed && changedBase ? `${fmt(changed.wallMs / 1000, 2)} s vs listing ${fmt(changedBase.wallMs / 1000, 2)} s = ${fmt(changed.wallMs / changedBase.wallMs, 2)}x` : missing('incremental-changed', 'listing'),
  );
  const nc = r['incremental-nochange'];
  const paired = nc?.extra?.pairedRatios ?? [];
  const ncRatio = paired.length ? median(paired) : nc && r.listing ? nc.wallMs / r.listing.wallMs : null;
  add(
    'incremental-nochange',
    'no-change incremental ÷ bare listing',
    '<= 1.1x',
    ncRatio === null ? null : ncRatio <= 1.1,
    ncRatio === null
      ? missing('incremental-nochange', 'listing')
      : paired.length
        ? `median of ${paired.length} paired runs ${fmt(ncRatio, 2)}x (${paired.map((x) => fmt(x, 2)).join(', ')})`
        : `${fmt(nc.wallMs / 1000, 2)} s vs listing ${fmt(r.listing.wallMs / 1000, 2)} s = ${fmt(ncRatio, 2)}x`,
  );

  // The versioned bucket (bench/lib/versioned.mjs; --versioned-only or a full run).
  const versioned = meta.versioned?.summary ?? [];
  const measured = versioned.filter((v) => v.changed);
  add(
    'versioned-nochange',
    'no-change incremental of a versioned bucket ÷ a listing of its current keys',
    '<= 1.3x',
    measured.length && measured.length === versioned.length ? measured.every((v) => v.changed.ratio <= 1.3) : null,
    measured.length
      ? measured.map((v) => `${v.versions} versions ${fmt(v.changed.ratio, 2)}x (${v.changed.listRequests} LIST)`).join('; ')
      : `not measured: no versioned scenario${meta.mode ? ` (mode ${meta.mode})` : ''}`,
  );
  const flat = meta.versioned?.flat;
  add(
    'versioned-flat',
    'the same, as history grows',
    'flat (<= 1.1x)',
    flat === undefined || flat === null ? null : flat <= 1.1,
    flat === undefined || flat === null ? 'not measured: needs the versioned scenario at two history depths' : `${versioned.map((v) => v.versions).join(' -> ')} versions: ${fmt(flat, 2)}x`,
  );

  const one = r['restore-single'];
  add(
    'restore-single',
    'single-object restore wall time',
    '<= 0.3 s',
    one ? one.wallMs <= 300 : null,
    one ? `${fmt(one.wallMs / 1000, 2)} s wall, ${fmt(one.cpuS, 2)} s CPU` : missing('restore-single'),
  );

  // Peak RSS of every lakeguard command of the run; with --rss-compare, per command at both scales.
  const lg = rows.filter((x) => x.ok && x.tool === 'lakeguard' && typeof x.peakRssMB === 'number');
  const top = [...lg].sort((a, b) => b.peakRssMB - a.peakRssMB);
  const over = top.filter((x) => x.peakRssMB >= 250);
  add(
    'peak-rss',
    `peak RSS, every command (scale ${meta.scale ?? '?'})`,
    '< 250 MB',
    lg.length ? over.length === 0 : null,
    lg.length
      ? `max ${fmt(top[0].peakRssMB, 0)} MB (${top[0].name}) over ${lg.length} commands${over.length ? `; at or over 250: ${over.map((x) => `${x.name} ${fmt(x.peakRssMB, 0)}`).join(', ')}` : ''}`
      : 'not measured: no lakeguard command ran',
  );
  const otherScale = rssCompare?.scale;
  const other = rssCompare?.rows?.filter((x) => x.ok && x.tool === 'lakeguard' && typeof x.peakRssMB === 'number') ?? [];
  const pairs = otherScale !== undefined && otherScale !== meta.scale ? lg.filter((x) => other.some((y) => y.name === x.name)) : [];
  if (otherScale !== undefined && pairs.length) {
    const [hiScale, loScale] = otherScale > meta.scale ? [otherScale, meta.scale] : [meta.scale, otherScale];
    const ratiosByName = pairs.map((x) => {
      const y = other.find((o) => o.name === x.name);
      const [hi, lo] = otherScale > meta.scale ? [y.peakRssMB, x.peakRssMB] : [x.peakRssMB, y.peakRssMB];
      return { name: x.name, hi, lo, ratio: hi / lo };
    });
    const worst = ratiosByName.reduce((a, b) => (b.ratio > a.ratio ? b : a));
    add(
      'peak-rss-scale',
      `peak RSS, scale ${hiScale} ÷ scale ${loScale}`,
      '<= 1.1x',
      ratiosByName.every((x) => x.ratio <= 1.1),
      `max ${fmt(worst.ratio, 2)}x (${worst.name}: ${fmt(worst.hi, 0)} vs ${fmt(worst.lo, 0)} MB) over ${ratiosByName.length} commands of both runs`,
    );
  } else {
    add('peak-rss-scale', 'peak RSS, scale 10 ÷ scale 1', '<= 1.1x', null, 'not measured: needs a run at another scale (--rss-compare FILE)');
  }
  return t;
}

/** The "targets (issue 22)" section of the printout: one line per row of the issue's table. */
export function formatIssue22Targets(targets) {
  return `targets (issue 22):\n${table(['metric', 'target', 'status', 'measured'], targets.map((t) => [t.metric, t.target, t.status, t.measured]), 4).split('\n').map((line) => line.trimEnd()).join('\n')}`;
}
