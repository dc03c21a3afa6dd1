import type { Command } from 'commander';
import { catalogGroups, groupUsage, repositoryUsage, type GroupUsage, type RunUsage } from '../catalog/cost-usage.js';
import { classPrices, combineEstimates, estimateCost, objectsPerPack, type CostEstimate, type SideCost } from '../engine/cost.js';
import { UsageError } from '../errors.js';
import { DEFAULT_PRICES, type PriceTable } from '../policy/pricing.js';
import { formatBytes, formatTime, table } from '../util/format.js';
import { action } from './action.js';
import { openAll } from './context.js';

export function register(program: Command): void {
  program
    .command('cost')
    .description('per group and run: objects, bytes, packs and requests, and the estimated monthly cost against copying object by object')
    .option('-g, --group <name>', 'only this group')
    .option('--class <storage class>', 'storage class to price the repository in (default: pricing.storage_class of the policy, else repository.storage_class, else STANDARD)')
    .option('--runs-per-day <n>', 'price this many runs a day instead of the rate observed in the catalog')
    .addHelpText('after', '\nReads only the catalog. Prices: AWS us-east-1 list prices unless the policy has a pricing: section (README, "Cost").')
    .action(
      action(async ({ cmd, signal, reporter }) => {
        const opts = cmd.opts<{ group?: string; class?: string; runsPerDay?: string }>();
        const runsPerDay = opts.runsPerDay === undefined ? undefined : runsPerDayOption(opts.runsPerDay);
        const ctx = await openAll(cmd, { reporter, signal, wholeCatalog: true });
        try {
          const repositoryClass = ctx.policy.repository.storageClass;
          const policyPrices = ctx.policy.pricing ?? (repositoryClass === undefined ? DEFAULT_PRICES : { ...DEFAULT_PRICES, storageClass: repositoryClass });
          const prices = withClass(policyPrices, opts.class);
          const min = classPrices(prices, prices.storageClass).minObjectBytes;
          const known = catalogGroups(ctx.catalog);
          if (opts.group !== undefined && !known.includes(opts.group)) {
            throw new UsageError(`no runs of group ${JSON.stringify(opts.group)} in the catalog`, {
              hint: known.length === 0 ? 'run `lakeguard backup` first' : `groups with runs: ${known.join(', ')}`,
            });
          }
          const now = Date.now();
          const names = opts.group === undefined ? known : [opts.group];
          const estimates: CostEstimate[] = [];
          const text: string[] = [];
          for (const name of names) {
            const usage = groupUsage(ctx.catalog, name, min);
            const estimate = estimateCost({ runs: usage.runs, packs: usage.packs, metadataObjects: usage.metadataObjects, retained: usage.retained, prices, now, ...(runsPerDay === undefined ? {} : { runsPerDay }) });
            estimates.push(estimate);
            if (reporter.json) {
              for (const r of usage.runs) reporter.data({ message_type: 'run', group: name, ...runJson(r) }, '');
              reporter.data({ message_type: 'group', ...groupJson(usage), estimate: rounded(estimate) }, '');
            } else {
              text.push(describeGroup(usage), comparison(estimate, `group ${name}`));
            }
          }
          let total: CostEstimate | undefined = estimates.length === 1 ? estimates[0] : undefined;
          if (estimates.length > 1) {
            const repo = repositoryUsage(ctx.catalog, min);
            total = combineEstimates(estimates, repo, prices, now);
            text.push(comparison(total, `all ${estimates.length} groups (storage: the whole repository, ${formatBytes(repo.packs.bytes)} in ${repo.packs.objects} packs)`));
          }
          reporter.answer(
            {
              groups: names,
              currency: prices.currency,
              storageClass: prices.storageClass,
              sourceClass: prices.sourceClass,
              prices: { [prices.storageClass]: classPrices(prices, prices.storageClass), [prices.sourceClass]: classPrices(prices, prices.sourceClass) },
              basis: prices.basis,
              total: total === undefined ? null : rounded(total),
            },
            names.length === 0 ? 'no runs yet: run `lakeguard backup`' : text.join('\n\n'),
          );
        } finally {
          ctx.close();
        }
      }),
    );
}

function runsPerDayOption(text: string): number {
  const n = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text.trim()) || !Number.isFinite(n) || n > 100_000) {
    throw new UsageError(`--runs-per-day ${JSON.stringify(text)}: expected a number of runs a day such as 1, 24 or 0.5`);
  }
  return n;
}

function withClass(prices: PriceTable, name: string | undefined): PriceTable {
  if (name === undefined) return prices;
  if (prices.classes[name] === undefined) {
    throw new UsageError(`--class ${JSON.stringify(name)}: no prices for this storage class`, {
      hint: `known: ${Object.keys(prices.classes).join(', ')}; add others under pricing.classes in the policy`,
    });
  }
  return { ...prices, storageClass: name };
}

function runJson(r: RunUsage): Record<string, unknown> {
  const c = r.counters;
  return {
    id: r.id,
    started: new Date(r.started).toISOString(),
    status: r.status,
    sourceObjects: r.sourceObjects,
    sourceBytes: r.sourceBytes,
    objectsSeen: c?.objectsSeen ?? null,
    objectsNewOrChanged: c === null ? null : c.objectsNew + c.objectsChanged,
    bytesNew: c?.bytesNew ?? null,
    bytesStored: c?.bytesStored ?? null,
    packsWritten: c?.packsWritten ?? null,
    objectsPerPack: c === null ? null : objectsPerPack(c),
    requests: c === null ? null : { put: c.requests.put, get: c.requests.get + c.requests.head, list: c.requests.list },
  };
}

function groupJson(u: GroupUsage): Record<string, unknown> {
  return {
    group: u.group,
    runs: u.runs.length,
    source: u.source,
    retained: { versions: u.retained.objects, bytes: u.retained.bytes, deleteMarkers: u.deleteMarkers },
    repository: { packs: u.packs.objects, bytes: u.packs.bytes, metadataObjects: u.metadataObjects, objectsPerPack: u.packs.objects === 0 ? null : u.retained.objects / u.packs.objects },
  };
}

/** Money to a millionth and GB-months to a billionth: exact enough, and stable in JSON. */
function rounded(e: CostEstimate): CostEstimate {
  const r = (n: number, digits: number): number => Number(n.toFixed(digits));
  const side = (s: SideCost): SideCost => ({
    ...s,
    gbMonths: r(s.gbMonths, 9),
    storagePerMonth: r(s.storagePerMonth, 6),
    requestsPerMonth: { put: r(s.requestsPerMonth.put, 3), get: r(s.requestsPerMonth.get, 3), list: r(s.requestsPerMonth.list, 3) },
    requestCostPerMonth: r(s.requestCostPerMonth, 6),
    totalPerMonth: r(s.totalPerMonth, 6),
    firstCopy: { ...s.firstCopy, cost: r(s.firstCopy.cost, 6) },
  });
  return {
    ...e,
    schedule: { ...e.schedule, runsPerDay: r(e.schedule.runsPerDay, 4), runsPerMonth: r(e.schedule.runsPerMonth, 3), windowDays: r(e.schedule.windowDays, 3) },
    lakeguard: side(e.lakeguard),
    copy: side(e.copy),
    savingsPerMonth: r(e.savingsPerMonth, 6),
  };
}

function describeGroup(u: GroupUsage): string {
  const lines = [`group ${u.group}: ${u.runs.length} ${u.runs.length === 1 ? 'run' : 'runs'}`];
  const last = u.runs.at(-1);
  const perPack = u.packs.objects === 0 ? '' : `, ${count(u.retained.objects / u.packs.objects, 1)} versions per pack`;
  lines.push(
    `  source now   ${count(u.source.objects)} objects, ${formatBytes(u.source.bytes)}${last === undefined ? '' : ` (as of run ${last.id})`}`,
    `  retained     ${count(u.retained.objects)} versions, ${formatBytes(u.retained.bytes)}${u.deleteMarkers > 0 ? ` (and ${count(u.deleteMarkers)} delete marker${u.deleteMarkers === 1 ? '' : 's'})` : ''}`,
    `  repository   ${count(u.packs.objects)} packs, ${formatBytes(u.packs.bytes)}${perPack}; ${count(u.metadataObjects)} index files and run manifests`,
    '',
  );
  const rows = u.runs.map((r) => {
    const c = r.counters;
    const perRunPack = c === null ? null : objectsPerPack(c);
    return [
      r.id,
      formatTime(r.started),
      r.status,
      r.sourceObjects,
      formatBytes(r.sourceBytes),
      c === null ? '-' : c.objectsNew + c.objectsChanged,
      c === null ? '-' : formatBytes(c.bytesNew),
      c === null ? '-' : formatBytes(c.bytesStored),
      c === null ? '-' : c.packsWritten,
      perRunPack === null ? '-' : count(perRunPack, 1),
      c === null ? '-' : c.requests.put,
      c === null ? '-' : c.requests.get + c.requests.head,
      c === null ? '-' : c.requests.list,
    ];
  });
  lines.push(table(['RUN', 'STARTED', 'STATUS', 'OBJECTS', 'BYTES', 'NEW/CHANGED', 'NEW BYTES', 'WRITTEN', 'PACKS', 'OBJ/PACK', 'PUT', 'GET', 'LIST'], rows));
  return lines.join('\n');
}

/** The table for people who read invoices: two columns, a handful of rows. */
function comparison(e: CostEstimate, what: string): string {
  const money = (n: number): string => formatMoney(n, e.currency);
  const rows: [string, string, string][] = [
    ['objects stored', count(e.lakeguard.objects), count(e.copy.objects)],
    ['billable size', formatBytes(e.lakeguard.billableBytes), formatBytes(e.copy.billableBytes)],
    ['storage (GB-month)', gb(e.lakeguard.gbMonths), gb(e.copy.gbMonths)],
    ['storage per month', money(e.lakeguard.storagePerMonth), money(e.copy.storagePerMonth)],
    ['requests per month', money(e.lakeguard.requestCostPerMonth), money(e.copy.requestCostPerMonth)],
    ['total per month', money(e.lakeguard.totalPerMonth), money(e.copy.totalPerMonth)],
    ['first full copy (once)', money(e.lakeguard.firstCopy.cost), money(e.copy.firstCopy.cost)],
  ];
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.max('lakeguard'.length, ...rows.map((r) => r[1].length));
  const w2 = Math.max('copy per object'.length, ...rows.map((r) => r[2].length));
  const s = e.schedule;
  const rate =
    s.basis === 'given'
      ? `${count(s.runsPerDay, 2)} runs a day (given)`
      : `${count(s.runsPerDay, 2)} runs a day (${s.runsInWindow} in the last ${count(s.windowDays, 1)} days)`;
  const averaged = e.runsAveraged === 0 ? 'no incremental run yet, so no monthly requests' : `each run like the average of ${e.runsAveraged} incremental ${e.runsAveraged === 1 ? 'run' : 'runs'}`;
  const verdict =
    e.copy.totalPerMonth > 0
      ? `lakeguard costs ${count((100 * e.lakeguard.totalPerMonth) / e.copy.totalPerMonth, 0)}% of copying object by object (${money(Math.abs(e.savingsPerMonth))} ${e.savingsPerMonth >= 0 ? 'less' : 'more'} per month)`
      : 'nothing to compare yet';
  return [
    `Estimated cost per month, ${what}, stored in ${e.storageClass} (${e.currency})`,
    `${''.padEnd(w0)}  ${'lakeguard'.padStart(w1)}  ${'copy per object'.padStart(w2)}`,
    ...rows.map(([k, a, b]) => `${k.padEnd(w0)}  ${a.padStart(w1)}  ${b.padStart(w2)}`),
    verdict,
    `Assumes ${rate}, ${count(s.runsPerMonth, 1)} runs a 30-day month, ${averaged}; PUTs priced at ${e.storageClass}, LIST/GET at ${e.sourceClass}.`,
    `Prices: ${e.basis}. Not included: data transfer, KMS, retrieval and early-deletion fees (README, "Cost").`,
  ].join('\n');
}

const SYMBOLS: Record<string, string> = { USD: '$', EUR: '€', GBP: '£', JPY: '¥' };

/** `$1,234.56`; amounts under a cent keep four decimals so small repositories do not read as free. */
export function formatMoney(n: number, currency: string): string {
  const symbol = SYMBOLS[currency] ?? `${currency} `;
  const sign = n < 0 ? '-' : '';
  const a = Math.abs(n);
  if (a === 0) return `${symbol}0.00`;
  if (a < 0.0001) return `<${symbol}0.0001`;
  const digits = a < 0.01 ? 4 : 2;
  return `${sign}${symbol}${a.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })}`;
}

function gb(n: number): string {
  return n === 0 ? '0' : n < 0.001 ? n.toExponential(2) : count(n, n < 10 ? 3 : 1);
}

function count(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}
