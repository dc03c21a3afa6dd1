import type { Command } from 'commander';
import type { Catalog } from '../catalog/catalog.js';
import { listDrills, type DrillRow } from '../catalog/drills.js';
import { CatalogQueries, type CalendarDay, type CalendarMonth, type CalendarRun } from '../catalog/queries.js';
import type { RunStatus } from '../catalog/types.js';
import { UsageError } from '../errors.js';
import { formatTime } from '../util/format.js';
import { printable } from '../util/printable.js';
import { action } from './action.js';
import { openAll } from './context.js';
import { plural, requireGroup, withIso } from './query-common.js';
import { runMarks } from './runs-anomalies.js';
import { runSetMark } from './runs-sets.js';
import { runSetsOf } from '../catalog/run-sets.js';

/** How a day shows its runs: one mark per kind of outcome that day, in this order. */
const MARKS = [
  { kind: 'complete', symbol: '●', color: 32, legend: 'complete' },
  { kind: 'partial', symbol: '◐', color: 33, legend: 'partial (some objects failed)' },
  { kind: 'failed', symbol: '✕', color: 31, legend: 'failed or interrupted' },
  { kind: 'running', symbol: '○', color: 36, legend: 'running' },
  { kind: 'suspect', symbol: '▲', color: 35, legend: 'suspect (anomalies found, not acknowledged)' },
  { kind: 'drill', symbol: '◆', color: 34, legend: 'restore drill passed' },
  { kind: 'drill-failed', symbol: '◇', color: 31, legend: 'restore drill failed' },
] as const;
type MarkKind = (typeof MARKS)[number]['kind'];

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
const CELL = 7;

export function register(program: Command): void {
  program
    .command('calendar')
    .description('a month of backup runs, day by day: complete, partial, failed')
    .option('-g, --group <name>', 'only runs of this group')
    .option('--month <yyyy-mm>', 'the month to show (default: this month)')
    .addHelpText(
      'after',
      `
Each day shows one mark per outcome of its runs: ● complete, ◐ partial (some objects failed),
✕ failed or interrupted, ○ still running, and ▲ when a run that day is suspect (anomalies
found, not acknowledged: \`lakeguard runs show <id> --anomalies\`); ◆ a restore drill passed,
◇ one failed (\`lakeguard drill\`). Days are cut in the machine's local time zone (TZ);
weeks start on Monday. Colours only on a terminal, never with NO_COLOR set. --json prints one
line per day with its runs.`,
    )
    .action(
      action(async ({ cmd, signal, reporter }) => {
        const flags = cmd.opts<{ group?: string; month?: string }>();
        const month = flags.month ?? localMonth(new Date());
        if (!/^\d{4}-(0[1-9]|1[0-2])$/.test(month)) throw new UsageError(`--month ${JSON.stringify(month)}: expected YYYY-MM, such as 2026-11`);
        // Runs and drills come from the manifests and drill documents: no key's records (on demand).
        const ctx = await openAll(cmd, { reporter, signal, selects: () => [] });
        try {
          if (flags.group !== undefined) requireGroup(ctx.policy, ctx.catalog, flags.group);
          const cal = new CatalogQueries(ctx.catalog).calendar(month, flags.group);
          const mark = runMarks(ctx.catalog);
          // A run set (listed by its id) is suspect when one of its shard attempts is.
          const setMarks = new Map(runSetsOf(ctx.catalog, flags.group === undefined ? {} : { group: flags.group }).map((set) => [set.id, runSetMark(set, mark)]));
          const suspect = (r: CalendarRun): boolean => (setMarks.get(r.id) ?? mark(r.id)) === 'suspect';
          const totals = countRuns(cal.days.flatMap((d) => d.runs));
          const drills = drillsByDay(ctx.catalog, cal.days, flags.group);
          if (reporter.json) {
            for (const day of cal.days) {
              const dayDrills = drills.get(day.date) ?? [];
              reporter.data({ message_type: 'day', date: day.date, ...countRuns(day.runs), suspect: day.runs.filter(suspect).length, runs: day.runs.map((r) => ({ ...withIso(r, 'started', 'finished'), suspect: suspect(r) })), drills: dayDrills.map(drillJson) }, '');
            }
            reporter.summary({ month: cal.month, timeZone: cal.timeZone, group: cal.group, ...totals, suspect: cal.days.flatMap((d) => d.runs).filter(suspect).length }, '');
          } else {
            const color = useColor();
            reporter.data(null, renderCalendar(cal, { color, today: color ? localDate(new Date()) : null, suspect, drills }));
          }
        } finally {
          ctx.close();
        }
      }),
    );
}

/** The month grid, legend and the runs that need attention, as printed on a terminal. */
export function renderCalendar(cal: CalendarMonth, opts: { color: boolean; today?: string | null; suspect?: (run: CalendarRun) => boolean; drills?: ReadonlyMap<string, DrillRow[]> }): string {
  const suspect = opts.suspect ?? (() => false);
  const drills = opts.drills ?? new Map<string, DrillRow[]>();
  const paint = (code: number, text: string) => (opts.color ? `\x1b[${code}m${text}\x1b[0m` : text);
  const [year, mon] = cal.month.split('-').map(Number) as [number, number];
  const lines = [`${MONTHS[mon - 1]} ${year}  ${cal.group === null ? 'all groups' : `group ${cal.group}`}  (days in ${cal.timeZone} time)`, ''];
  lines.push(['Mo', 'Tu', 'We', 'Th', 'Fr', 'Sa', 'Su'].map((d) => d.padEnd(CELL)).join('').trimEnd());
  const firstWeekday = (new Date(Date.UTC(year, mon - 1, 1)).getUTCDay() + 6) % 7; // Monday = 0
  let row = ' '.repeat(CELL * firstWeekday);
  cal.days.forEach((day, i) => {
    const kinds = kindsOf(day, suspect, drills.get(day.date) ?? []);
    const marks = MARKS.filter((m) => kinds.has(m.kind));
    const number = String(i + 1).padStart(2);
    const cell = `${day.date === opts.today ? paint(7, number) : number} ${marks.map((m) => paint(m.color, m.symbol)).join('')}`;
    row += cell + ' '.repeat(Math.max(1, CELL - 3 - marks.length));
    if ((firstWeekday + i) % 7 === 6 || i === cal.days.length - 1) {
      lines.push(row.trimEnd());
      row = '';
    }
  });
  // The suspect mark's legend only in a month that has one: it is long, and a rare sight.
  const allDrills = [...drills.values()].flat();
  const shown = MARKS.filter((m) =>
    m.kind === 'suspect' ? cal.days.some((d) => d.runs.some(suspect)) : m.kind === 'drill' ? allDrills.some((d) => d.ok) : m.kind === 'drill-failed' ? allDrills.some((d) => !d.ok) : true,
  );
  lines.push('', shown.map((m) => `${paint(m.color, m.symbol)} ${m.legend}`).join('   '));
  const runs = cal.days.flatMap((d) => d.runs);
  const c = countRuns(runs);
  if (runs.length === 0) {
    lines.push('', 'no runs this month');
  } else {
    const parts = (['complete', 'partial', 'failed', 'interrupted', 'running'] as const).filter((k) => c[k] > 0).map((k) => `${c[k]} ${k}`);
    lines.push('', `${plural(runs.length, 'run')}: ${parts.join(', ')}`);
    const attention = runs.filter((r) => r.status !== 'complete' || suspect(r));
    for (const r of attention.slice(0, 20)) {
      const failed = r.status === 'partial' || r.objectsFailed > 0 ? `  ${plural(r.objectsFailed, 'object')} failed` : '';
      const status = suspect(r) ? `${r.status} ${paint(35, '▲ SUSPECT')}` : r.status.padEnd(11);
      lines.push(`  ${formatTime(r.started)}  ${status}  ${printable(r.id)}  ${printable(r.group)}${failed}`);
    }
    if (attention.length > 20) lines.push(`  … and ${attention.length - 20} more (see \`lakeguard runs\`)`);
    if (attention.some((r) => r.status !== 'complete')) lines.push('(details: `lakeguard runs show <id> --failures`)');
    if (attention.some(suspect)) lines.push('(suspect runs: `lakeguard runs show <id> --anomalies`)');
  }
  if (allDrills.length > 0) {
    const failed = allDrills.filter((d) => !d.ok);
    lines.push('', `${plural(allDrills.length, 'restore drill')}: ${allDrills.length - failed.length} passed, ${failed.length} failed`);
    for (const d of failed.slice(0, 20)) lines.push(`  ${formatTime(d.created)}  drill failed  ${printable(d.name)}  ${printable(d.scope)}  ${plural(d.doc.objects.damaged, 'object')} damaged`);
  }
  return lines.join('\n');
}

function kindsOf(day: CalendarDay, suspect: (run: CalendarRun) => boolean, drills: readonly DrillRow[]): Set<MarkKind> {
  const kinds = new Set<MarkKind>(day.runs.map((r) => markOf(r.status)));
  if (day.runs.some(suspect)) kinds.add('suspect');
  if (drills.some((d) => d.ok)) kinds.add('drill');
  if (drills.some((d) => !d.ok)) kinds.add('drill-failed');
  return kinds;
}

/** The month's drills (of the group's scope, with --group) by local day. */
export function drillsByDay(catalog: Catalog, days: readonly CalendarDay[], group: string | undefined): Map<string, DrillRow[]> {
  const first = days[0]?.date;
  const byDay = new Map<string, DrillRow[]>();
  if (first === undefined) return byDay;
  // A day's margin each side: the month's days are local, drills are stored in UTC.
  const from = Date.parse(`${first}T00:00:00Z`) - 86_400_000;
  const to = from + (days.length + 2) * 86_400_000;
  const dates = new Set(days.map((d) => d.date));
  for (const d of listDrills(catalog, { from, to })) {
    if (group !== undefined && d.scope !== `group:${group}`) continue;
    const date = localDate(new Date(d.created));
    if (!dates.has(date)) continue;
    byDay.set(date, [...(byDay.get(date) ?? []), d]);
  }
  return byDay;
}

/** A drill in --json output (calendar's days, runs' drill messages). */
export function drillJson(d: DrillRow): Record<string, unknown> {
  const { damaged: _damaged, ...doc } = d.doc;
  return { ...doc, damagedListed: d.doc.damaged.length };
}

function markOf(status: RunStatus): MarkKind {
  return status === 'interrupted' ? 'failed' : status;
}

function countRuns(runs: readonly CalendarRun[]): Record<RunStatus, number> & { runs: number } {
  const c = { runs: runs.length, complete: 0, partial: 0, failed: 0, interrupted: 0, running: 0 };
  for (const r of runs) c[r.status]++;
  return c;
}

/** Colour only for a terminal, and never when NO_COLOR is set (https://no-color.org) or TERM=dumb. */
function useColor(): boolean {
  return process.stdout.isTTY === true && !process.env.NO_COLOR && process.env.TERM !== 'dumb';
}

function localMonth(d: Date): string {
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}`;
}

function localDate(d: Date): string {
  return `${localMonth(d)}-${String(d.getDate()).padStart(2, '0')}`;
}
