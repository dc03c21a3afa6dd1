/**
 * Reading an instant from the command line (`--at`, `--since`, `diff <from> <to>`) as a
 * state cut of the catalog.
 *
 *   ISO 8601    `2026-11-22` (start of that day), `2026-11-22T10:42`, `2026-11-22 10:42:05.250`,
 *               `2026-11-22T10:42:00Z`, `2026-11-22T10:42+01:00`. Without an offset the time is
 *               the machine's local time zone (TZ is respected); a local time that a DST change
 *               skips is moved forward by the gap, a repeated one means its first occurrence.
 *   a run       full run id, unique id prefix (`20261123T1015`) or run number: the state that
 *               run recorded (its versions and every earlier run's), not a wall-clock instant.
 *               A run set's id (a sharded backup): the state after all its recorded shards.
 *   relative    `90s`, `15m`, `2h`, `3d`, `1w`, `1.5h` ago (combinable: `1h30m`; an optional ` ago`).
 *               `m` is minutes here (retention's `6m` months is another context).
 *   `now`
 */
import { UsageError } from '../errors.js';
import { formatTimeMs } from '../util/format.js';
import type { Catalog, StateCut } from './catalog.js';
import { sqlite } from './connection.js';
import { sourceRunRefError } from './copied-runs.js';
import { ambiguousRunSetName, findRunSet, runSet, runSetCut, runSetsStartingWith } from './run-sets.js';

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

const RELATIVE = /^(?:\d+(?:\.\d+)?\s*[smhdw])+(?:\s*ago)?$/i;

const ISO =
  /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?\s*(?:([Zz])|([+-])(\d{2}):?(\d{2})?)?)?$/;

export const ACCEPTED_INSTANTS =
  'ISO 8601 (2026-11-22, 2026-11-22T10:42, 2026-11-22T10:42:00Z, 2026-11-22T10:42+01:00; without an offset: local time), ' +
  'a run id (or run set id), unique run id prefix or run number, a time ago (90s, 15m, 2h, 3d, 1w), or "now"';

/** Reads `text` as a state cut; throws UsageError naming the text and the accepted forms. */
export function parseAt(text: string, catalog: Catalog, now: number = Date.now()): StateCut {
  const t = text.trim();
  if (t.toLowerCase() === 'now') return { time: now };
  if (RELATIVE.test(t)) return { time: now - relativeMs(t) };
  const iso = parseIso(t);
  if (iso !== undefined) {
    if ('error' in iso) throw new UsageError(`cannot read ${JSON.stringify(text)} as an instant: ${iso.error}`, { hint: `accepted: ${ACCEPTED_INSTANTS}` });
    return { time: iso.time };
  }
  if (t !== '' && !/\s/.test(t)) {
    const cut = runOrRunSetCut(catalog, t);
    if (cut !== undefined) return cut;
    const ambiguous = ambiguousRunSetName(catalog, t);
    if (ambiguous !== undefined) throw ambiguous;
    const candidates = [...runsStartingWith(catalog, t), ...runSetsStartingWith(catalog, t, 4)];
    if (candidates.length > 1) {
      throw new UsageError(`${JSON.stringify(text)} matches several runs: ${candidates.slice(0, 3).join(', ')}${candidates.length > 3 ? ', …' : ''}`, {
        hint: 'give more of the run id',
      });
    }
  }
  throw sourceRunRefError(catalog, t) ?? new UsageError(`cannot read ${JSON.stringify(text)} as an instant or a run`, { hint: `accepted: ${ACCEPTED_INSTANTS}; list runs with \`lakeguard runs\`` });
}

/**
 * A run or a run set by id, unique id prefix or run number, as a state cut: a run's
 * (`{runSeq}`), or a run set's (the state after all its recorded shards: run-sets.ts
 * `runSetCut`). A run set's id is tried first (it is no run's id), then runs, then a unique
 * prefix of a run set's id. Undefined when none (or an ambiguous prefix).
 */
export function runOrRunSetCut(catalog: Catalog, ref: string): StateCut | undefined {
  const exact = runSet(catalog, ref);
  if (exact !== undefined) return runSetCut(catalog, exact);
  const run = catalog.findRun(ref);
  if (run !== undefined) return { runSeq: run.seq };
  if (runsStartingWith(catalog, ref).length > 0) return undefined;
  const set = findRunSet(catalog, ref);
  return set === undefined ? undefined : runSetCut(catalog, set);
}

/**
 * How to name a cut in human output: `run 2026…-abc123 (#4, finished 2026-11-23 10:15:00.412Z)`
 * or a UTC time, both to the millisecond (two events a few ms apart are on either side of it).
 */
export function describeCut(cut: StateCut, catalog: Catalog): string {
  if ('time' in cut) {
    const note = unfinishedRunSetNote(catalog, cut.time);
    return note === null ? formatTimeMs(cut.time) : `${formatTimeMs(cut.time)} (${note})`;
  }
  if (cut.runSet !== undefined) return describeRunSetCut(catalog, cut.runSet.id);
  const run = catalog.findRun(String(cut.runSeq));
  if (run === undefined) return `run #${cut.runSeq}`;
  return `run ${run.id} (#${run.seq}, ${run.finished === null ? `started ${formatTimeMs(run.started)}, not finished` : `finished ${formatTimeMs(run.finished)}`})`;
}

/** `run set <id> (nightly, complete, 4 of 4 shards, finished …)`. */
export function describeRunSetCut(catalog: Catalog, id: string): string {
  const set = runSet(catalog, id);
  if (set === undefined) return `run set ${id}`;
  const shards = `${set.complete} of ${set.of} shards complete${set.missing.length > 0 ? `, missing ${set.missing.join(', ')}` : ''}`;
  return `run set ${set.id} (${set.name}, ${set.status}: ${shards}${set.finished === null ? '' : `, finished ${formatTimeMs(set.finished)}`})`;
}

/**
 * Whose knowledge a time cut shows: `2026-11-23 10:52:07.412Z, as recorded by run <id> (group g,
 * finished …)`, the last run (of `group`, if given) that had finished by then, and a run that
 * was still running at that instant (what it noticed later, such as an unversioned source's
 * deletions, is stamped later and not included). A catalog's time cut is only as good as the
 * runs behind it: this says which ones.
 */
export function describeTimeCut(catalog: Catalog, time: number, group?: string): string {
  const byGroup = group === undefined ? '' : ' AND grp = @group';
  const params = { time, ...(group === undefined ? {} : { group }) };
  const db = sqlite(catalog);
  const last = db.prepare(`SELECT id, grp, finished FROM runs WHERE finished <= @time${byGroup} ORDER BY finished DESC LIMIT 1`).get(params) as
    | { id: string; grp: string; finished: number }
    | undefined;
  const running = db.prepare(`SELECT id FROM runs WHERE started <= @time AND (finished IS NULL OR finished > @time)${byGroup} ORDER BY seq LIMIT 1`).get(params) as
    | { id: string }
    | undefined;
  const at = `state at ${formatTimeMs(time)}`;
  const recorded = last === undefined ? `${at}, before any run${group === undefined ? '' : ` of group ${group}`} had finished` : `${at}, as recorded by run ${last.id} (group ${last.grp}, finished ${formatTimeMs(last.finished)})`;
  const withRunning = running === undefined ? recorded : `${recorded}; run ${running.id} was still running then: what it noticed after that instant is not included`;
  const note = unfinishedRunSetNote(catalog, time, group);
  return note === null ? withRunning : `${withRunning}; ${note}`;
}

/**
 * The first run to finish, when none had finished by `time` (undefined when one had): the
 * catalog's state at such an instant is only what that run found with older times. `null`: no
 * run has finished at all.
 */
export function firstRunAfter(catalog: Catalog, time: number): { id: string; finished: number } | null | undefined {
  const first = sqlite(catalog).prepare('SELECT id, finished FROM runs WHERE finished IS NOT NULL ORDER BY finished LIMIT 1').get() as
    | { id: string; finished: number }
    | undefined;
  if (first === undefined) return null;
  return first.finished > time ? first : undefined;
}

/**
 * A run set (of `group`, if given) that had begun by `time` with some shards not finished yet:
 * at that instant its finished shards' key ranges are new and the others' older, so the state
 * is not the run set's. Said in words (`run set <id> (nightly) had 3 of 4 shards finished
 * then: …`); null when there is none.
 */
export function unfinishedRunSetNote(catalog: Catalog, time: number, group?: string): string | null {
  const unfinished = unfinishedRunSetAt(catalog, time, group);
  if (unfinished === undefined) return null;
  return `run set ${unfinished.id} (${unfinished.name}) had ${unfinished.done} of ${unfinished.shards} shards finished then: in the key ranges of the others, this is what earlier runs recorded`;
}

/** The run set unfinishedRunSetNote speaks of: its id, name, shard count and shards finished by `time`. */
export function unfinishedRunSetAt(catalog: Catalog, time: number, group?: string): { id: string; name: string; shards: number; done: number } | undefined {
  return sqlite(catalog)
    .prepare(
      `SELECT s.set_run AS id, s.set_name AS name, max(s.shard_count) AS shards,
              count(DISTINCT CASE WHEN r.status <> 'running' AND r.finished <= @time THEN s.shard_index END) AS done
       FROM run_shards s JOIN runs r ON r.seq = s.run
       ${group === undefined ? '' : 'WHERE r.grp = @group'}
       GROUP BY s.set_run HAVING min(r.started) <= @time AND done < shards ORDER BY min(r.started) DESC LIMIT 1`,
    )
    .get({ time, ...(group === undefined ? {} : { group }) }) as { id: string; name: string; shards: number; done: number } | undefined;
}

function relativeMs(text: string): number {
  let ms = 0;
  for (const m of text.toLowerCase().matchAll(/(\d+(?:\.\d+)?)\s*([smhdw])/g)) ms += Number(m[1]) * UNIT_MS[m[2]!]!;
  return Math.round(ms);
}

/** undefined: not ISO-shaped at all; {error}: ISO-shaped but impossible (2026-02-30, 25:00). */
function parseIso(text: string): { time: number } | { error: string } | undefined {
  const m = ISO.exec(text);
  if (m === null) return undefined;
  const [, y, mo, d, h, mi, s, frac, zulu, sign, oh, om] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h ?? 0);
  const minute = Number(mi ?? 0);
  const second = Number(s ?? 0);
  const ms = frac === undefined ? 0 : Math.floor(Number(`0.${frac}`) * 1000);
  if (month < 1 || month > 12) return { error: `month ${mo} is not 01-12` };
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (day < 1 || day > daysInMonth) return { error: `day ${d} does not exist in ${y}-${mo}` };
  if (hour > 23 || minute > 59 || second > 59) return { error: `time ${h}:${mi}${s === undefined ? '' : `:${s}`} is out of range` };
  // Date.UTC maps years 0-99 to 19xx; setUTCFullYear does not.
  const utc = (yy: number) => {
    const date = new Date(Date.UTC(2000, month - 1, day, hour, minute, second, ms));
    date.setUTCFullYear(yy, month - 1, day);
    return date.getTime();
  };
  if (zulu !== undefined) return { time: utc(year) };
  if (sign !== undefined) {
    const offH = Number(oh);
    const offM = Number(om ?? 0);
    if (offH > 23 || offM > 59) return { error: `offset ${sign}${oh}:${om ?? '00'} is out of range` };
    const offset = (sign === '-' ? -1 : 1) * (offH * 60 + offM) * 60_000;
    return { time: utc(year) - offset };
  }
  const local = new Date(2000, month - 1, day, hour, minute, second, ms);
  local.setFullYear(year, month - 1, day);
  local.setHours(hour, minute, second, ms);
  return { time: local.getTime() };
}

function runsStartingWith(catalog: Catalog, prefix: string): string[] {
  return sqlite(catalog)
    .prepare("SELECT id FROM runs WHERE id LIKE ? || '%' ESCAPE '\\' ORDER BY seq LIMIT 4")
    .pluck()
    .all(prefix.replace(/[%_\\]/g, '\\$&')) as string[];
}
