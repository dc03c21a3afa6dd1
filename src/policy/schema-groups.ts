/**
 * The `groups` section of the policy schema: groups, their sources (S3 buckets or local
 * directories), prefixes and excludes, and the retention maps nested at every level with the
 * compliance floor (`min_age_days`) they inherit. The top of the schema is in schema.ts.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMap, isScalar, isSeq } from 'yaml';
import { bucketNameProblem, sameEndpoint, splitS3Url } from '../storage/s3-url.js';
import { isWithin } from '../util/path-within.js';
import type { AnomalyLevel } from './anomaly.js';
import { compileExcludes } from './glob.js';
import { checkAnomaly } from './schema-anomaly.js';
import { checkCredentials } from './schema-credentials.js';
import { checkContinuous, checkEvents } from './schema-continuous.js';
import type { Group, Policy, Retention, Source } from './types.js';
import { checkDuration, checkEndpoint, checkGlobList, checkLocalPath, checkRegion } from './values.js';
import { read, withoutUndefined, type Checker, type Field } from './yaml-check.js';

const GROUP_KEYS = ['name', 'sources', 'retention', 'anomaly', 'continuous'] as const;
const SOURCE_KEYS = ['bucket', 'path', 'name', 'prefixes', 'exclude', 'endpoint', 'region', 'inventory', 'credentials', 'retention', 'anomaly', 'continuous', 'events'] as const;
const PREFIX_KEYS = ['prefix', 'retention', 'anomaly'] as const;
export const RETENTION_KEYS = [
  'keep_last',
  'keep_hourly',
  'keep_daily',
  'keep_weekly',
  'keep_monthly',
  'keep_yearly',
  'keep_within',
  'min_age_days',
] as const;

/** What checking one policy carries from section to section. */
export interface Context {
  file: string;
  baseDir: string;
  /** Catalog name -> the first source catalogued under it, across all groups (see checkCatalogName). */
  catalogNames: Map<string, CatalogNameClaim>;
  /** The repository as `repository:` gives it (set before the groups are checked): no source may hold it. */
  repository?: { url: string; endpoint: string | undefined };
}

const GROUP_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

export function checkGroups(c: Checker, f: Field, ctx: Context, s3: Policy['s3'], floor: Floor | undefined): Group[] | undefined {
  const items = c.list(f, 'a list of groups');
  if (items === undefined) return undefined;
  if (items.length === 0 && isSeq(f.node) && f.node.items.length === 0) {
    c.report(f, 'expected at least one group, got an empty list');
    return undefined;
  }
  const before = c.problems.length;
  const names = new Map<string, Field>();
  const groups: Group[] = [];
  for (const item of items) {
    const group = checkGroup(c, item, ctx, s3, names, floor);
    if (group !== undefined) groups.push(group);
  }
  return c.problems.length > before ? undefined : groups;
}

function checkGroup(c: Checker, f: Field, ctx: Context, s3: Policy['s3'], names: Map<string, Field>, floor: Floor | undefined): Group | undefined {
  const m = c.map(f, GROUP_KEYS, 'a map with name, sources and optional retention');
  if (m === undefined) return undefined;
  const before = c.problems.length;

  let name: string | undefined;
  const nameField = m.get('name');
  if (nameField === undefined) {
    c.missing(f, 'name', 'name: finance');
  } else {
    name = c.string(nameField, 'a group name');
    if (name !== undefined && !GROUP_NAME.test(name)) {
      c.report(nameField, `invalid group name ${JSON.stringify(name)}: use 1-63 letters, digits, dots, underscores and hyphens, starting with a letter or digit`);
    } else if (name !== undefined) {
      const first = names.get(name);
      if (first !== undefined) c.report(nameField, `duplicate group name "${name}" (already used by ${first.path.replace(/\.name$/, '')} on line ${c.lineOf(first.offset)})`);
      else names.set(name, nameField);
    }
  }

  const retention = read(m, 'retention', (x) => checkRetention(c, x, floor));
  const anomaly = read(m, 'anomaly', (x) => checkAnomaly(c, x));
  const continuous = read(m, 'continuous', (x) => checkContinuous(c, x));
  const groupFloor = (m.has('retention') ? floorOf(c, m.get('retention')!) : undefined) ?? floor;

  let sources: Source[] | undefined;
  const sourcesField = m.get('sources');
  if (sourcesField === undefined) c.missing(f, 'sources', 'sources: [{ bucket: raw-events }]');
  else sources = checkSources(c, sourcesField, ctx, s3, groupFloor);

  if (c.problems.length > before || name === undefined || sources === undefined) return undefined;
  return withoutUndefined({ name, sources, retention, anomaly, continuous });
}

function checkSources(c: Checker, f: Field, ctx: Context, s3: Policy['s3'], floor: Floor | undefined): Source[] | undefined {
  const items = c.list(f, 'a list of sources');
  if (items === undefined) return undefined;
  if (isSeq(f.node) && f.node.items.length === 0) {
    c.report(f, 'expected at least one source, got an empty list');
    return undefined;
  }
  const before = c.problems.length;
  // "bucket\0prefix" → where it was first listed, so repeats name the earlier entry.
  const seen = new Map<string, string>();
  const sources: Source[] = [];
  for (const item of items) {
    const source = checkSource(c, item, ctx, s3, seen, floor);
    if (source !== undefined) sources.push(source);
  }
  return c.problems.length > before ? undefined : sources;
}

function checkSource(
  c: Checker,
  f: Field,
  ctx: Context,
  s3: Policy['s3'],
  seen: Map<string, string>,
  floor: Floor | undefined,
): Source | undefined {
  const m = c.map(f, SOURCE_KEYS, 'a map with bucket (or path), and optional prefixes and exclude');
  if (m === undefined) return undefined;
  const before = c.problems.length;
  const bucketField = m.get('bucket');
  const pathField = m.get('path');

  let where: { kind: 's3'; bucket: string } | { kind: 'path'; path: string } | undefined;
  if (bucketField !== undefined && pathField !== undefined) {
    c.report(pathField, 'set either bucket (an S3 bucket) or path (a local directory), not both');
  } else if (bucketField !== undefined) {
    const bucket = c.string(bucketField, 'an S3 bucket name');
    const problem = bucket === undefined ? undefined : bucketNameProblem(bucket);
    if (problem !== undefined) c.report(bucketField, `invalid bucket name ${JSON.stringify(bucket)}: ${problem}`);
    else if (bucket !== undefined) where = { kind: 's3', bucket };
  } else if (pathField !== undefined) {
    const dir = checkLocalPath(c, pathField, ctx, 'a directory path');
    if (dir !== undefined) where = { kind: 'path', path: dir };
  } else {
    c.reportAt(f.offset, f.path, 'each source needs bucket (an S3 bucket) or path (a local directory)');
  }
  const nameField = m.get('name');
  const name = nameField === undefined ? undefined : checkSourceName(c, nameField, bucketField !== undefined);
  if (where !== undefined && (nameField === undefined || name !== undefined)) {
    checkCatalogName(c, ctx, where.kind === 's3' ? where.bucket : (name ?? path.basename(where.path)), {
      what: where.kind === 's3' ? `bucket "${where.bucket}"` : `path "${where.path}"`,
      field: nameField ?? (where.kind === 's3' ? bucketField! : pathField!),
    });
  }

  const endpoint = read(m, 'endpoint', (x) => checkEndpoint(c, x));
  const region = read(m, 'region', (x) => checkRegion(c, x));
  const inventory = read(m, 'inventory', (x) => checkInventoryUrl(c, x));
  const credentials = read(m, 'credentials', (x) => checkCredentials(c, x));
  const events = read(m, 'events', (x) => checkEvents(c, x));
  const continuous = read(m, 'continuous', (x) => checkContinuous(c, x));
  if (pathField !== undefined && bucketField === undefined) {
    for (const key of ['endpoint', 'region', 'inventory', 'credentials', 'events'] as const) {
      const x = m.get(key);
      if (x !== undefined) c.report(x, 'only applies to bucket sources; remove it');
    }
  }

  const retention = read(m, 'retention', (x) => checkRetention(c, x, floor));
  const anomaly = read(m, 'anomaly', (x) => checkAnomaly(c, x));
  const sourceFloor = (m.has('retention') ? floorOf(c, m.get('retention')!) : undefined) ?? floor;
  const prefixesField = m.get('prefixes');
  const prefixes = prefixesField === undefined ? [{ value: '', field: f }] : checkPrefixes(c, prefixesField, sourceFloor);
  const excludeField = m.get('exclude');
  const exclude = excludeField === undefined ? [] : checkExcludes(c, excludeField);

  if (where !== undefined && prefixes !== undefined) {
    const label = where.kind === 's3' ? `bucket "${where.bucket}"` : `path "${where.path}"`;
    for (const { value, field } of prefixes) {
      const id = `${where.kind}\0${where.kind === 's3' ? where.bucket : where.path}\0${value}`;
      const first = seen.get(id);
      const what = value === '' ? `${label} (all of it)` : `${label} prefix "${value}"`;
      if (first !== undefined) c.report(field, `${what} is already listed at ${first}`);
      else seen.set(id, field.path);
    }
  }

  if (c.problems.length > before || where === undefined || prefixes === undefined || exclude === undefined) return undefined;
  const prefixList = prefixes.map((p) => p.value);
  if (ctx.repository !== undefined) {
    const holds = sourceHoldsRepository(ctx.repository, where.kind === 's3' ? { ...where, endpoint: endpoint ?? s3.endpoint } : where, prefixList, exclude);
    if (holds !== undefined) {
      const what = where.kind === 's3' ? `bucket "${where.bucket}"` : `path "${where.path}"`;
      const fix = holds.inside
        ? 'back up the data, not the repository'
        : holds.key === ''
          ? 'give the repository a bucket of its own'
          : `exclude it (exclude: ["${holds.key}**"]), or move the repository out of the source`;
      c.report(
        where.kind === 's3' ? bucketField! : pathField!,
        `${what} ${holds.inside ? 'lies inside' : 'holds'} the repository ${ctx.repository.url}: every backup would copy the repository's own objects; ${fix}`,
      );
      return undefined;
    }
  }
  const withRetention = prefixes.filter((p) => p.retention !== undefined);
  const prefixRetention = withRetention.length === 0 ? undefined : Object.fromEntries(withRetention.map((p) => [p.value, p.retention!]));
  const withAnomaly = prefixes.filter((p) => p.anomaly !== undefined);
  const prefixAnomaly = withAnomaly.length === 0 ? undefined : Object.fromEntries(withAnomaly.map((p) => [p.value, p.anomaly!]));
  const settings = { retention, prefixRetention, anomaly, prefixAnomaly, continuous };
  if (where.kind === 'path') return withoutUndefined({ kind: 'path' as const, path: where.path, name, prefixes: prefixList, exclude, ...settings });
  return withoutUndefined({
    kind: 's3' as const,
    bucket: where.bucket,
    prefixes: prefixList,
    exclude,
    endpoint: endpoint ?? s3.endpoint,
    region: region ?? s3.region,
    inventory,
    credentials,
    events,
    ...settings,
  });
}

/** Keys of a repository's objects, relative to its root: a source selecting any of them copies the repository. */
const REPOSITORY_KEYS_PROBED = ['config', 'keys/k', 'locks/l', 'index/i', 'runs/r', 'packs/00/p'];

/**
 * Whether a source selects the repository's own objects (it lies under the source's prefixes and
 * is not excluded), or lies inside the repository; `key`: the repository's root as a key of the source.
 */
function sourceHoldsRepository(
  repo: { url: string; endpoint: string | undefined },
  where: { kind: 's3'; bucket: string; endpoint: string | undefined } | { kind: 'path'; path: string },
  prefixes: readonly string[],
  exclude: readonly string[],
): { key: string; inside: boolean } | undefined {
  let root: string; // the repository's root as a key of the source ('' or ending in '/')
  let inside: boolean;
  if (where.kind === 'path') {
    if (!repo.url.startsWith('file:')) return undefined;
    const dir = fileURLToPath(repo.url);
    inside = isWithin(where.path, dir);
    if (!inside && !isWithin(dir, where.path)) return undefined;
    const down = path.relative(where.path, dir);
    root = down === '' ? '' : `${down.split(path.sep).join('/')}/`;
  } else {
    if (!repo.url.startsWith('s3://')) return undefined;
    const parsed = splitS3Url(repo.url);
    if ('problem' in parsed || parsed.bucket !== where.bucket) return undefined;
    if (!sameEndpoint(repo.endpoint, where.endpoint)) return undefined; // one name on two servers: two buckets
    root = parsed.prefix === '' ? '' : `${parsed.prefix}/`;
    inside = root !== '' && prefixes.some((p) => p.startsWith(root) && p !== root);
  }
  if (inside) return { key: root, inside };
  let excluded: (key: string) => boolean;
  try {
    excluded = compileExcludes(exclude);
  } catch {
    return undefined; // a bad glob is reported as such
  }
  const selected = REPOSITORY_KEYS_PROBED.some((k) => prefixes.some((p) => (root + k).startsWith(p)) && !excluded(root + k));
  return selected ? { key: root, inside: false } : undefined;
}

/**
 * `inventory: s3://bucket/prefix/`: where the source bucket's S3 Inventory configuration
 * delivers its reports, the folder holding the dated report folders
 * (`<destination prefix>/<source bucket>/<configuration id>/`). Normalized with one trailing
 * slash (`s3://bucket/` when the reports sit at the bucket's top).
 */
function checkInventoryUrl(c: Checker, f: Field): string | undefined {
  const example = 's3://inventory-bucket/<destination prefix>/<source bucket>/<configuration id>/';
  const raw = c.string(f, `an S3 URL such as ${example}`);
  if (raw === undefined) return undefined;
  if (!raw.startsWith('s3://')) {
    c.report(f, `expected an S3 URL such as ${example}, got ${JSON.stringify(raw)}`);
    return undefined;
  }
  const parsed = splitS3Url(raw);
  if ('problem' in parsed) {
    c.report(f, parsed.problem === 'bucket' ? `invalid bucket name ${JSON.stringify(parsed.bucket)} in ${JSON.stringify(raw)}: ${parsed.reason}` : `${JSON.stringify(raw)} has an empty path segment ("//")`);
    return undefined;
  }
  return `s3://${parsed.bucket}/${parsed.prefix === '' ? '' : `${parsed.prefix}/`}`;
}

/** A source's catalog name is claimed by the first source that uses it. */
interface CatalogNameClaim {
  /** `path "/data/a/lake"` or `bucket "raw-events"`: the same source may appear in several groups. */
  what: string;
  field: Field;
}

/**
 * One catalog name, one source: the catalog keys objects by (name, key), so two directories
 * under one name (a path source is named after its base name by default) would each look like
 * the other's deletions in every run.
 */
function checkCatalogName(c: Checker, ctx: Context, catalogName: string, claim: CatalogNameClaim): void {
  const first = ctx.catalogNames.get(catalogName);
  if (first === undefined) {
    ctx.catalogNames.set(catalogName, claim);
    return;
  }
  if (first.what === claim.what) return;
  c.report(
    claim.field,
    `${claim.what} would be catalogued as "${catalogName}", the name of ${first.what} (${first.field.path}, line ${c.lineOf(first.field.offset)}): ` +
      'each run would record the files of one as deleted from the other; give each path source a distinct name, e.g. "name: ' +
      `${catalogName}-2"`,
  );
}

function checkSourceName(c: Checker, f: Field, isBucket: boolean): string | undefined {
  if (isBucket) {
    c.report(f, 'only applies to path sources (a bucket is catalogued under its own name); remove it');
    return undefined;
  }
  const name = c.string(f, 'a source name');
  if (name === undefined || GROUP_NAME.test(name)) return name;
  c.report(f, `invalid source name ${JSON.stringify(name)}: use 1-63 letters, digits, dots, underscores and hyphens, starting with a letter or digit`);
  return undefined;
}

/** One prefix entry: the prefix, where it was written, and the settings given on it. */
interface PrefixEntry {
  value: string;
  field: Field;
  retention?: Retention;
  anomaly?: AnomalyLevel;
}

function checkPrefixes(c: Checker, f: Field, floor: Floor | undefined): PrefixEntry[] | undefined {
  const items = c.list(f, 'a list of key prefixes such as [events/, invoices/]');
  if (items === undefined) return undefined;
  if (isSeq(f.node) && f.node.items.length === 0) {
    c.report(f, 'expected at least one prefix, got an empty list; leave prefixes out to back up everything');
    return undefined;
  }
  const before = c.problems.length;
  const out: PrefixEntry[] = [];
  for (const entry of items) {
    // A prefix is a string, or `{ prefix: events/, retention: {...}, anomaly: {...} }` to give it its own rules.
    let item = entry;
    let retention: Retention | undefined;
    let anomaly: AnomalyLevel | undefined;
    if (isMap(entry.node)) {
      const m = c.map(entry, PREFIX_KEYS, 'a key prefix, or a map with prefix, retention and anomaly');
      if (m === undefined) continue;
      const prefixField = m.get('prefix');
      if (prefixField === undefined) {
        c.missing(entry, 'prefix', 'prefix: events/');
        continue;
      }
      item = prefixField;
      retention = read(m, 'retention', (x) => checkRetention(c, x, floor));
      anomaly = read(m, 'anomaly', (x) => checkAnomaly(c, x));
    }
    const value = c.string(item, 'a key prefix (quote it if it looks like a number)', { allowEmpty: true });
    if (value === undefined) continue;
    if (value.startsWith('/')) {
      c.report(item, `prefix ${JSON.stringify(value)} must not start with "/" (object keys have no leading slash); write ${JSON.stringify(value.replace(/^\/+/, ''))}`);
      continue;
    }
    out.push(withoutUndefined({ value, field: item, retention, anomaly }));
  }
  return c.problems.length > before ? undefined : out;
}

function checkExcludes(c: Checker, f: Field): string[] | undefined {
  return checkGlobList(c, f, { list: 'a list of globs such as ["**/_temporary/**", "*.crc"]', item: 'a glob such as "*.crc"' });
}


/** The compliance floor in force at a level: min_age_days and the field that set it. */
export interface Floor {
  days: number;
  path: string;
  line: number;
}

/** The floor a retention map sets (undefined when it sets none, or sets it invalidly). */
export function floorOf(c: Checker, f: Field): Floor | undefined {
  if (!isMap(f.node)) return undefined;
  const pair = f.node.items.find((p) => isScalar(p.key) && p.key.value === 'min_age_days');
  const node = pair !== undefined && isScalar(pair.value) ? pair.value : undefined;
  const value = node?.value;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) return undefined;
  return { days: value, path: `${f.path}.min_age_days`, line: c.lineOf(node?.range?.[0] ?? f.offset) };
}

export function checkRetention(c: Checker, f: Field, floor: Floor | undefined): Retention | undefined {
  const m = c.map(f, RETENTION_KEYS, `a map of ${RETENTION_KEYS.join(', ')}`);
  if (m === undefined) return undefined;
  const before = c.problems.length;
  const count = (key: (typeof RETENTION_KEYS)[number]) => read(m, key, (x) => c.integer(x, 0));
  const minAge = m.get('min_age_days');
  const own = minAge === undefined ? undefined : floorOf(c, f);
  if (minAge !== undefined && own !== undefined && floor !== undefined && own.days < floor.days) {
    c.report(
      minAge,
      `min_age_days ${own.days} is below the ${floor.days} set by ${floor.path} on line ${floor.line}; a compliance floor is inherited and can only be raised`,
    );
  }
  const retention: Retention = withoutUndefined({
    keepLast: count('keep_last'),
    keepHourly: count('keep_hourly'),
    keepDaily: count('keep_daily'),
    keepWeekly: count('keep_weekly'),
    keepMonthly: count('keep_monthly'),
    keepYearly: count('keep_yearly'),
    keepWithin: read(m, 'keep_within', (x) => checkDuration(c, x)),
    minAgeDays: count('min_age_days'),
  });
  return c.problems.length > before ? undefined : retention;
}
