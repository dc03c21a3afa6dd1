import { UsageError } from '../errors.js';
import type { Catalog, StateCut } from './catalog.js';

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };
const FORMS = 'an ISO 8601 time (2026-11-22T10:42, local time unless it has Z or an offset), a run id or number, `now`, or a duration ago (90s, 15m, 2h, 3d, 1w)';

/**
 * Reads an instant the way an incident responder types it: ISO 8601 (without an offset it is
 * the machine's local time, TZ respected; a date alone is the start of that local day), a run
 * id / unique id prefix / run number (the state that run recorded), `now`, or a duration ago.
 */
export function parseAt(text: string, catalog: Catalog, now: number = Date.now()): StateCut {
  const t = text.trim();
  if (t === 'now') return { time: now };
  const rel = /^(\d+(?:\.\d+)?)\s*([smhdw])$/.exec(t);
  if (rel !== null) return { time: now - Number(rel[1]) * UNITS[rel[2]!]! };
  const iso = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?)?\s*(Z|[+-]\d{2}:?\d{2})?$/.exec(t);
  if (iso !== null) {
    const [, y, mo, d, h = '0', mi = '0', s = '0', ms = '0', zone] = iso;
    const parts = [Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s), Number(ms.padEnd(3, '0'))] as const;
    let time: number;
    if (zone === undefined) {
      time = new Date(...parts).getTime();
    } else {
      const offset = zone === 'Z' ? 0 : (zone.startsWith('-') ? -1 : 1) * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(-2)));
      time = Date.UTC(...parts) - offset * 60_000;
    }
    if (Number.isNaN(time) || Number(mo) < 1 || Number(mo) > 12 || Number(d) < 1 || Number(d) > 31) {
      throw new UsageError(`--at ${JSON.stringify(text)}: not a valid date`, { hint: `use ${FORMS}` });
    }
    return { time };
  }
  const run = catalog.findRun(t);
  if (run !== undefined) return { runSeq: run.seq };
  throw new UsageError(`--at ${JSON.stringify(text)}: not a time, a duration or a run in the catalog`, { hint: `use ${FORMS}` });
}
