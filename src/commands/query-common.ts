/** Pieces shared by the query commands (versions, find, ls, diff, calendar, runs show). */
import type { Catalog, StateCut } from '../catalog/catalog.js';
import { firstRunAfter, parseAt, unfinishedRunSetAt } from '../catalog/instant.js';
import { runSet } from '../catalog/run-sets.js';
import { catalogGroups } from '../catalog/cost-usage.js';
import type { CatalogQueries } from '../catalog/queries.js';
import type { EventSink } from '../engine/events.js';
import { UsageError } from '../errors.js';
import { parseSize } from '../policy/load.js';
import type { Policy } from '../policy/types.js';
import { formatTimeMs } from '../util/format.js';
import { printable } from '../util/printable.js';
import { endQueryWhenStdoutFails } from './output-streams.js';
import type { Reporter } from './reporter.js';

/**
 * `s3://bucket/key` (or `s3://name/...` for a local `path:` source, catalogued under the
 * directory's base name). The key is taken verbatim: no percent-decoding, no normalisation.
 */
export function parseObjectUrl(text: string, what: string): { bucket: string; key: string } {
  const m = /^s3:\/\/([^/]+)(?:\/(.*))?$/s.exec(text);
  if (m === null) {
    throw new UsageError(`${what} ${JSON.stringify(text)}: expected s3://bucket/key`, {
      hint: suggestion(text) ?? 'for a local path source use its directory name as the bucket: s3://<dir name>/<key>',
    });
  }
  return { bucket: m[1]!, key: m[2] ?? '' };
}

/** `bucket/key` or `s3:/bucket/key` as the URL it was meant to be, for the hint (or null). */
function suggestion(text: string): string | null {
  const rest = /^s3:\/*/i.test(text) ? text.replace(/^s3:\/*/i, '') : /^[/.]|^[a-z][a-z0-9+.-]*:/i.test(text) ? '' : text;
  return rest === '' ? null : `did you mean \`s3://${rest}\`? (a local path source goes by its directory name: s3://<dir name>/<key>)`;
}

/** Refuses a bucket the catalog never saw, naming the ones it has. */
export function requireBucket(q: CatalogQueries, bucket: string): void {
  if (q.hasBucket(bucket)) return;
  const known = q.buckets();
  throw new UsageError(`no bucket or source named ${JSON.stringify(bucket)} in the catalog`, {
    hint: known.length > 0 ? `known: ${known.slice(0, 10).join(', ')}${known.length > 10 ? `, … (${known.length})` : ''}; local path sources go by their directory name` : noBucketsHint(q.runCount()),
  });
}

/**
 * Refuses a group that neither the policy nor any run in the catalog knows, naming the known
 * ones: an unknown --group is a typo, not an empty answer. A group of the policy without runs
 * yet is fine (the answer is then honestly empty).
 */
export function requireGroup(policy: Policy, catalog: Catalog, group: string): void {
  const inPolicy = policy.groups.map((g) => g.name);
  if (inPolicy.includes(group)) return;
  const withRuns = catalogGroups(catalog);
  if (withRuns.includes(group)) return;
  const known = [...new Set([...inPolicy, ...withRuns])].sort();
  throw new UsageError(`no group named ${JSON.stringify(group)} in the policy or the catalog`, {
    hint: known.length === 0 ? 'there are no groups yet: add one to the policy and run `lakeguard backup`' : `groups: ${known.join(', ')}`,
  });
}

function noBucketsHint(runs: number): string {
  if (runs === 0) return 'the catalog is empty: run `lakeguard backup` (or `lakeguard catalog rebuild`)';
  // Runs that failed before recording anything, or whose versions forget dropped.
  return `none of the ${plural(runs, 'run')} in the catalog recorded an object: see \`lakeguard runs\` and \`lakeguard runs show <id> --failures\``;
}

/** An instant option (`--at`, `--since`, …) read with parseAt; the error names the option. */
export function instantOption(text: string, catalog: Catalog, flag: string, now?: number): StateCut {
  try {
    return parseAt(text, catalog, now);
  } catch (err) {
    if (err instanceof UsageError) throw new UsageError(`${flag}: ${err.message}`, err.hint === undefined ? {} : { hint: err.hint });
    throw err;
  }
}

/**
 * A state cut (`--at`, a diff's side) at an instant before the first run finished is rebuilt
 * from the times of the versions that run found: what was deleted or overwritten before it is
 * unknown, so a key missing there may well have existed. The answer comes with a warning that
 * says so (printed with --quiet too: it qualifies the answer).
 */
export function warnBeforeFirstRun(catalog: Catalog, cut: StateCut, flag: string, events: EventSink): void {
  if (!('time' in cut)) return;
  const first = firstRunAfter(catalog, cut.time);
  if (first === undefined) return;
  events({
    type: 'warning',
    qualifies: true,
    message:
      first === null
        ? `${flag} ${formatTimeMs(cut.time)}: no run has finished yet, so the catalog knows nothing of the buckets then (\`lakeguard runs\`)`
        : `${flag} ${formatTimeMs(cut.time)} is before the first run finished (${first.id}, at ${formatTimeMs(first.finished)}): ` +
          'the state there holds only what that run found with older times; what was deleted or overwritten before it is unknown',
  });
}

/** `10MiB`, `1G`, `512k`, plain bytes. */
export function sizeOption(text: string, flag: string): number {
  const n = parseSize(text);
  if (n === undefined) throw new UsageError(`${flag} ${JSON.stringify(text)}: expected a size such as 1048576, 512KiB, 10MiB or 1G (binary units)`);
  return n;
}

export function limitOption(text: string | undefined, flag = '--limit'): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || Number(text) < 1) throw new UsageError(`${flag} ${JSON.stringify(text)}: expected a whole number of at least 1`);
  return Number(text);
}

export interface Column<T> {
  header: string;
  value: (item: T) => string | number;
  /** Right-align (numbers, sizes). */
  right?: boolean;
}

/**
 * Prints a long list page by page without holding it: with --json one line per item (with a
 * `message_type`), otherwise a table whose column widths are set by the first page and grow
 * when a later row needs more. The last column is never padded (keys can be long). Every cell
 * is printable() (keys may hold terminal escapes); JSON keeps the raw values.
 *
 * add() waits until the reader has taken what was written (stdout's 'drain'): a pipe to a
 * slower reader (`| gzip`, `| ssh`) would otherwise queue the whole listing in memory, since
 * the pages come from synchronous catalog reads that never let the write finish on their own.
 */
export class ListPrinter<T> {
  private widths: number[] | null = null;
  count = 0;

  constructor(
    private readonly reporter: Reporter,
    private readonly messageType: string,
    private readonly columns: Column<T>[],
    private readonly json: (item: T) => Record<string, unknown>,
    private readonly out: NodeJS.WritableStream & { writableNeedDrain?: boolean } = process.stdout,
  ) {
    if (out === process.stdout) endQueryWhenStdoutFails(reporter);
  }

  /** Prints up to `max - count` items, then waits for the reader; resolves false once `max` is reached. */
  async add(items: readonly T[], max = Infinity): Promise<boolean> {
    const take = items.slice(0, Math.max(0, max - this.count));
    this.count += take.length;
    if (take.length === 0) return this.count < max;
    let out = '';
    if (this.reporter.json) {
      for (const item of take) out += JSON.stringify({ message_type: this.messageType, ...this.json(item) }) + '\n';
    } else {
      // The list is the query's answer: printed with --quiet too, as Reporter.data prints a table.
      const rows = take.map((item) => this.columns.map((c) => printable(String(c.value(item)))));
      if (this.widths === null) {
        this.widths = this.columns.map((c, i) => Math.max(c.header.length, ...rows.map((r) => r[i]!.length)));
        out += this.line(this.columns.map((c) => c.header));
      }
      for (const r of rows) out += this.line(r);
    }
    if (out !== '') this.out.write(out);
    await drained(this.out);
    return this.count < max;
  }

  private line(cells: string[]): string {
    const widths = this.widths!;
    return (
      cells
        .map((c, i) => {
          if (i === cells.length - 1) return c;
          widths[i] = Math.max(widths[i]!, c.length);
          return this.columns[i]!.right ? c.padStart(widths[i]) : c.padEnd(widths[i]);
        })
        .join('  ')
        .trimEnd() + '\n'
    );
  }
}

/**
 * Resolves once `out` has passed on what was written to it (at once for a file or a terminal,
 * which Node writes synchronously): a long listing waits here between pages for its reader.
 * Also when the reader goes away ('close', 'error': `| head`), so that a command that carries
 * on without its output (restore --dry-run) is not left waiting for a 'drain' that never comes.
 */
export function drained(out: NodeJS.WritableStream & { writableNeedDrain?: boolean } = process.stdout): Promise<void> {
  if (out.writableNeedDrain !== true) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      out.off('drain', done);
      out.off('close', done);
      out.off('error', done);
      resolve();
    };
    out.on('drain', done);
    out.on('close', done);
    out.on('error', done);
  });
}

/**
 * One CSV line: every CSV this tool writes goes through here. A cell that a spreadsheet would
 * take as a formula (starting with = + - @, tab or CR: a key such as `=HYPERLINK(...)` is
 * anyone's to write) gets a leading single quote, as OWASP's CSV injection guidance says; then
 * fields are quoted when they need it (RFC 4180).
 */
export function csvRow(values: readonly (string | number | null)[]): string {
  return values.map(csvField).join(',') + '\n';
}

function csvField(value: string | number | null): string {
  let s = value === null ? '' : String(value);
  if (typeof value === 'string' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) || /^\s|\s$/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/**
 * A JSON message with, after each epoch-millisecond field named in `fields` that it has, the
 * same instant as an ISO 8601 UTC string with milliseconds in `<field>Iso` (null stays null):
 * the numbers stay for the programs that read them, the strings are for people and for tools
 * that parse dates.
 */
export function withIso<T extends object>(message: T, ...fields: string[]): T {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(message)) {
    out[name] = value;
    if (fields.includes(name) && (typeof value === 'number' || value === null)) out[`${name}Iso`] = isoTime(value);
  }
  return out as T;
}

/** ISO 8601 UTC with milliseconds (`2026-11-23T10:52:07.412Z`); null for null. */
export function isoTime(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

/**
 * A state cut for JSON: `{runSeq}`, `{runSet, runSeqs, status, shards}` (a run set's attempts,
 * and whether every shard is in them) or `{time, timeIso}` (with `unfinishedRunSet` when a run
 * set had shards left then): a script learns that a state is not a whole run set's, as the text says.
 */
export function cutJson(cut: StateCut, catalog: Catalog): Record<string, unknown> {
  if ('time' in cut) {
    const unfinished = unfinishedRunSetAt(catalog, cut.time);
    return { ...withIso({ time: cut.time }, 'time'), ...(unfinished === undefined ? {} : { unfinishedRunSet: unfinished }) };
  }
  if (cut.runSet === undefined) return { runSeq: cut.runSeq };
  const set = runSet(catalog, cut.runSet.id);
  const state = set === undefined ? {} : { status: set.status, shards: { of: set.of, complete: set.complete, missing: set.missing } };
  return { runSet: cut.runSet.id, runSeqs: cut.runSet.seqs, ...state };
}

export function plural(n: number, word: string, many = `${word}s`): string {
  return `${n} ${n === 1 ? word : many}`;
}
