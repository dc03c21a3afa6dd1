#!/usr/bin/env node
// Re-renders issue 22's targets from a results file of `npm run bench` (also one written before
// the section existed): node bench/tools/targets.mjs RESULTS.json [--rss-compare OTHER.json] [--json]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { checkIssue22Targets, formatIssue22Targets } from '../lib/report.mjs';

const { values: opts, positionals } = parseArgs({ options: { 'rss-compare': { type: 'string' }, json: { type: 'boolean' } }, allowPositionals: true });
if (positionals.length !== 1) {
  process.stderr.write('usage: node bench/tools/targets.mjs RESULTS.json [--rss-compare OTHER.json] [--json]\n');
  process.exit(2);
}
const read = (/** @type {string} */ file) => JSON.parse(readFileSync(file, 'utf8'));
const { meta, rows } = read(positionals[0]);
const other = opts['rss-compare'] === undefined ? undefined : read(opts['rss-compare']);
const targets = checkIssue22Targets(rows, meta, { rssCompare: other && { scale: other.meta.scale, rows: other.rows, file: opts['rss-compare'] } });
process.stdout.write(opts.json ? JSON.stringify(targets, null, 2) + '\n' : `${positionals[0]} (scale ${meta.scale}, mode ${meta.mode})\n${formatIssue22Targets(targets)}\n`);
