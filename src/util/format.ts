import { printable } from './printable.js';

/** Binary units, as rclone and restic print them. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = n;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 2 : value < 100 ? 1 : 0)} ${units[unit]}`;
}

/**
 * `850 ms`, `12.4 s`, `5m00s`, `3h05m`, `2d04h`: the two largest units from a minute on, so a
 * run set that has waited three days for a shard does not read as `4320m00s`.
 */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  // Rounded before it is split: 59.96 s is 1m00s (not "60.0 s"), 22m59.6s is 23m00s (not 22m60s).
  if (ms < 59_950) return `${(ms / 1000).toFixed(1)} s`;
  const two = (n: number): string => String(n).padStart(2, '0');
  const seconds = Math.round(ms / 1000);
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${two(seconds % 60)}s`;
  const minutes = Math.round(ms / 60_000);
  if (minutes < 24 * 60) return `${Math.floor(minutes / 60)}h${two(minutes % 60)}m`;
  const hours = Math.round(ms / 3_600_000);
  return `${Math.floor(hours / 24)}d${two(hours % 24)}h`;
}

export function formatTime(ms: number | null): string {
  return ms === null ? '-' : new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

/**
 * An instant to the millisecond, `2026-11-23 10:52:07.412Z`: for the times people paste into
 * `--at` (a run's end), where the second is too coarse (see `runs --help`).
 */
export function formatTimeMs(ms: number | null): string {
  return ms === null ? '-' : new Date(ms).toISOString().replace('T', ' ');
}

/** A plain left-aligned text table; numbers right-aligned; every cell printable(). */
export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => printable(String(c))))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const numeric = headers.map((_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === 'number'));
  return cells
    .map((r) => r.map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd())
    .join('\n');
}

/**
 * Parses a percentage (`10%`, `0.5%`; `0` alone needs no sign) into a fraction 0..1. A bare
 * number is refused: read as a fraction up to 1 and as percent above, `1` was 100% and `2` was
 * 2%, so `--read-data-subset 1` (meant: 1%) read every pack and `--max-unused 0.5` allowed 50%.
 */
export function parseFraction(text: string): number | null {
  const m = /^(\d+(?:\.\d+)?)(%?)$/.exec(text.trim());
  if (!m) return null;
  const n = Number(m[1]);
  if (m[2] !== '%' && n !== 0) return null;
  const f = n / 100;
  return f <= 1 ? f : null;
}
