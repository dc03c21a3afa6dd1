// Every relative link in README.md and docs/*.md reaches a file, and every #anchor a heading
// (GitHub's slugs) of the page it names: the pages move and get renamed, the links must follow.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PAGES = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

/** The lines of a page outside fenced code blocks, with their numbers. */
function proseLines(text: string): [number, string][] {
  let fenced = false;
  const out: [number, string][] = [];
  text.split('\n').forEach((line, i) => {
    if (/^\s*(```|~~~)/.test(line)) fenced = !fenced;
    else if (!fenced) out.push([i + 1, line]);
  });
  return out;
}

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens, -1, -2 for repeats. */
function anchorsOf(file: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const [, line] of proseLines(readFileSync(file, 'utf8'))) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (heading !== null) {
      const text = heading[1]!.replace(/\[([^\]]*)\]\([^)]*\)/g, '$1').replace(/`/g, '');
      const slug = text.trim().toLowerCase().replace(/<[^>]+>/g, '').replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
      const n = seen.get(slug) ?? 0;
      seen.set(slug, n + 1);
      anchors.add(n === 0 ? slug : `${slug}-${n}`);
    }
    for (const a of line.matchAll(/<a (?:name|id)="([^"]+)"/g)) anchors.add(a[1]!);
  }
  return anchors;
}

describe('links in README.md and docs/', () => {
  it('every relative link reaches a file, and every anchor a heading of it', () => {
    const broken: string[] = [];
    for (const page of PAGES) {
      const abs = join(ROOT, page);
      for (const [n, line] of proseLines(readFileSync(abs, 'utf8'))) {
        for (const m of line.replace(/`[^`]*`/g, '').matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
          const url = m[1]!;
          if (/^[a-z]+:/i.test(url)) continue;
          const [path, anchor] = url.split('#') as [string, string | undefined];
          const target = path === '' ? abs : resolve(dirname(abs), path);
          const where = `${page}:${n}: ${url}`;
          if (!existsSync(target)) broken.push(`${where} (no ${relative(ROOT, target)})`);
          else if (anchor !== undefined && (statSync(target).isDirectory() || !anchorsOf(target).has(decodeURIComponent(anchor)))) broken.push(`${where} (no such heading)`);
        }
      }
    }
    expect(broken).toEqual([]);
  });

  it('finds links and anchors (the check is not vacuous)', () => {
    expect(anchorsOf(join(ROOT, 'README.md'))).toContain('retention-prune-and-object-lock');
    expect(anchorsOf(join(ROOT, 'docs/restore.md'))).toContain('archived-packs---thaw-days---tier');
  });
});
