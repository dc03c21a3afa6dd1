// Every `message_type` a command can print with --json is named in docs/output.md, so a
// script's author finds each one there (docs/output.md "--json"). Read from the source: the
// literals and the query printers' types.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '../..');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

describe('--json message types', () => {
  it('are each documented in docs/output.md', () => {
    const types = new Set<string>();
    for (const file of sources(join(ROOT, 'src'))) {
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/message_type: '([a-z_]+)'/g)) types.add(m[1]!);
      for (const m of text.matchAll(/new ListPrinter(?:<[^>]*>)?\(\s*reporter,\s*'([a-z_]+)'/g)) types.add(m[1]!);
    }
    expect(types.size).toBeGreaterThan(15);
    const doc = readFileSync(join(ROOT, 'docs/output.md'), 'utf8');
    expect([...types].filter((t) => !doc.includes(`\`${t}\``)).sort()).toEqual([]);
  });
});
