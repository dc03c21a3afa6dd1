/**
 * The Prometheus text exposition format (version 0.0.4), the one writer of it: the
 * node-exporter textfile of `--metrics-file` and the `/metrics` routes of `serve` and `watch`
 * render through here. Only gauges and counters without timestamps: the textfile collector
 * refuses samples with timestamps, and every value lakeguard reports is a "last seen" value.
 */

export type MetricType = 'gauge' | 'counter';

export interface Sample {
  labels: Readonly<Record<string, string>>;
  value: number;
}

export interface MetricFamily {
  /** `lakeguard_...`: [a-zA-Z_:][a-zA-Z0-9_:]* */
  name: string;
  help: string;
  type: MetricType;
  samples: Sample[];
}

/** The content type a `/metrics` route answers with. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Families as exposition text: each family once, its HELP and TYPE first, samples in the order given. */
export function renderPrometheus(families: readonly MetricFamily[]): string {
  const seen = new Set<string>();
  let out = '';
  for (const family of families) {
    // A name twice would make the scrape fail as a whole: a bug here, not the user's.
    if (!METRIC_NAME.test(family.name) || seen.has(family.name)) throw new Error(`invalid or repeated metric name ${JSON.stringify(family.name)}`);
    seen.add(family.name);
    out += `# HELP ${family.name} ${escapeHelp(family.help)}\n# TYPE ${family.name} ${family.type}\n`;
    for (const sample of family.samples) out += `${family.name}${renderLabels(sample.labels)} ${formatValue(sample.value)}\n`;
  }
  return out;
}

/** `{a="x",b="y"}` in the order given, or '' without labels. */
export function renderLabels(labels: Readonly<Record<string, string>>): string {
  const parts: string[] = [];
  for (const [name, value] of Object.entries(labels)) {
    if (!LABEL_NAME.test(name) || name.startsWith('__')) throw new Error(`invalid label name ${JSON.stringify(name)}`);
    parts.push(`${name}="${escapeLabelValue(value)}"`);
  }
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

// Label values may hold anything (a bucket, a prefix, a key-list path): the format escapes
// backslash, double quote and line feed; HELP text escapes backslash and line feed only.
function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

/**
 * Reads back exposition text this module wrote (a `--metrics-file` from an earlier command),
 * so that a new command can replace its own series and keep the others. Returns null for text
 * it does not recognise (the file is then rewritten from this command's series alone).
 */
export function parseOwnPrometheus(text: string): MetricFamily[] | null {
  const families = new Map<string, MetricFamily>();
  const family = (name: string): MetricFamily => {
    let f = families.get(name);
    if (f === undefined) families.set(name, (f = { name, help: '', type: 'gauge', samples: [] }));
    return f;
  };
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) ?(.*)$/.exec(line);
    if (meta !== null) {
      const f = family(meta[2]!);
      if (meta[1] === 'HELP') f.help = meta[3]!.replace(/\\(n|\\)/g, (_, c: string) => (c === 'n' ? '\n' : '\\'));
      else if (meta[3] === 'gauge' || meta[3] === 'counter') f.type = meta[3];
      else return null;
      continue;
    }
    if (line.startsWith('#')) continue;
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (sample === null) return null;
    const labels = parseLabels(sample[2] ?? '');
    const value = parseValue(sample[3]!);
    if (labels === null || value === null) return null;
    family(sample[1]!).samples.push({ labels, value });
  }
  return [...families.values()];
}

function parseLabels(text: string): Record<string, string> | null {
  const labels: Record<string, string> = {};
  const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/gy;
  let end = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    labels[m[1]!] = m[2]!.replace(/\\(n|\\|")/g, (_, c: string) => (c === 'n' ? '\n' : c));
    end = re.lastIndex;
  }
  return end === text.length ? labels : null;
}

function parseValue(text: string): number | null {
  if (text === 'NaN') return NaN;
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  const n = Number(text);
  return text !== '' && !Number.isNaN(n) ? n : null;
}

/**
 * `older` with every series of `newer` put in: a series (name and label set) in both takes
 * newer's value, families and series only in `older` stay (other groups, other commands).
 * A family's samples replaced by label set, so a run of group A leaves group B's as they were.
 */
export function mergeFamilies(older: readonly MetricFamily[], newer: readonly MetricFamily[]): MetricFamily[] {
  const byName = new Map<string, MetricFamily>(older.map((f) => [f.name, { ...f, samples: [...f.samples] }]));
  for (const f of newer) {
    const old = byName.get(f.name);
    if (old === undefined) {
      byName.set(f.name, { ...f, samples: [...f.samples] });
      continue;
    }
    const keyOf = (s: Sample): string => renderLabels(sortedLabels(s.labels));
    const replaced = new Set(f.samples.map(keyOf));
    byName.set(f.name, { ...f, samples: [...old.samples.filter((s) => !replaced.has(keyOf(s))), ...f.samples] });
  }
  return [...byName.values()];
}

function sortedLabels(labels: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
