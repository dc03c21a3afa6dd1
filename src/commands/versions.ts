import type { Command } from 'commander';
import { allPages, CatalogQueries, type VersionInfo } from '../catalog/queries.js';
import { UsageError } from '../errors.js';
import { formatBytes, formatTimeMs } from '../util/format.js';
import { printable } from '../util/printable.js';
import { action } from './action.js';
import { requireInScope } from './catalog-scope-guard.js';
import { openAll } from './context.js';
import { limitOption, ListPrinter, parseObjectUrl, plural, requireBucket, withIso } from './query-common.js';

export function register(program: Command): void {
  program
    .command('versions')
    .description('list every catalogued version and delete marker of one object, newest first')
    .argument('<s3url>', 's3://bucket/key (a local path source goes by its directory name: s3://<dir>/<key>)')
    .option('--limit <n>', 'show at most this many versions')
    .addHelpText(
      'after',
      `
TIME is when the version became the object's state (for unversioned sources: its last-modified
time, or when a run saw it deleted). DATA says whether every piece of its content is located in
a pack of the repository ("missing" means it cannot be restored). Reads only the catalog.`,
    )
    .action(
      action(async ({ cmd, signal, reporter }, url: string) => {
        const opts = cmd.opts<{ limit?: string }>();
        const { bucket, key } = parseObjectUrl(url, 'versions:');
        if (key === '') throw new UsageError(`versions: ${JSON.stringify(url)} names no key`, { hint: 'give s3://bucket/key; to see a prefix use `lakeguard ls`' });
        const max = limitOption(opts.limit) ?? Infinity;
        const selection = [{ bucket, prefix: key, exact: true }];
        const ctx = await openAll(cmd, { reporter, signal, selects: () => selection });
        try {
          requireInScope(ctx.catalog, 'versions', selection);
          const q = new CatalogQueries(ctx.catalog);
          requireBucket(q, bucket);
          const printer = new ListPrinter<VersionInfo>(
            reporter,
            'version',
            [
              { header: 'TIME', value: (v) => formatTimeMs(v.time) },
              { header: 'SIZE', value: (v) => (v.deleteMarker ? '-' : formatBytes(v.size)), right: true },
              { header: 'ETAG', value: (v) => (v.deleteMarker ? '(delete marker)' : (v.etag ?? '-').replace(/"/g, '')) },
              { header: 'VERSION ID', value: (v) => v.versionId ?? '-' },
              { header: 'DATA', value: (v) => (v.dataPresent === null ? '-' : v.dataPresent ? 'present' : 'MISSING') },
              { header: 'RUN', value: (v) => v.run },
            ],
            (v) => withIso({ bucket, key, ...v }, 'time', 'lastModified'),
          );
          let markers = 0;
          let missing = 0;
          for (const items of allPages(q.versionsOf(bucket, key), (after) => q.versionsOf(bucket, key, { after }))) {
            const shown = items.slice(0, Math.max(0, max - printer.count));
            markers += shown.filter((v) => v.deleteMarker).length;
            missing += shown.filter((v) => v.dataPresent === false).length;
            if (!(await printer.add(items, max))) break;
          }
          const n = printer.count;
          const url = printable(`s3://${bucket}/${key}`);
          const text =
            n === 0
              ? `no versions of ${url} in the catalog (${nextStep(bucket, key)})`
              : `${url}: ${plural(n, 'version')}${markers > 0 ? ` (${plural(markers, 'delete marker')})` : ''}` +
                (missing > 0 ? `; ${missing} with missing data (run \`lakeguard verify\`)` : '');
          reporter.summary({ bucket, key, versions: n, deleteMarkers: markers, missingData: missing }, text);
        } finally {
          ctx.close();
        }
      }),
    );
}

/** Where to look when a key has no version: the keys under it when it names a directory, else the same name elsewhere. */
function nextStep(bucket: string, key: string): string {
  const name = key.split('/').pop()!;
  if (name === '') return `it names a prefix, not a key: \`lakeguard ls ${printable(`s3://${bucket}/${key}`)}\` lists what is under it`;
  return `look for it elsewhere with \`lakeguard find '${printable(name)}'\``;
}
