import { afterEach, describe, expect, it, vi } from 'vitest';
import { Reporter } from '../../src/commands/reporter.js';
import { describeRebuild } from '../../src/commands/catalog.js';
import { describeDrill } from '../../src/commands/drill.js';
import { csvRow } from '../../src/commands/query-common.js';
import type { DrillReport } from '../../src/engine/drill.js';
import type { RebuildReport } from '../../src/engine/rebuild.js';
import { StorageError } from '../../src/errors.js';
import { printable, printableLines } from '../../src/util/printable.js';

/** Reads the printed form back (the inverse documented in src/util/printable.ts). */
function unprint(text: string): string {
  return text.replace(/\\(x[0-9a-f]{2}|u[0-9a-f]{4}|[\\tnr])/g, (_, e: string) =>
    e === '\\' ? '\\' : e === 't' ? '\t' : e === 'n' ? '\n' : e === 'r' ? '\r' : String.fromCharCode(parseInt(e.slice(1), 16)),
  );
}

describe('printable: keys cannot drive the terminal', () => {
  it('escapes C0, DEL, C1 and bidi controls; plain backslashes stay; the form reads back exactly', () => {
    expect(printable('a\x1b[2Kb')).toBe('a\\x1b[2Kb');
    expect(printable('x\ny\rz\t')).toBe('x\\ny\\rz\\t');
    expect(printable('\x00\x07\x7f\x85\x9b')).toBe('\\x00\\x07\\x7f\\x85\\x9b');
    expect(printable('evil\u202etxt.exe\u2028')).toBe('evil\\u202etxt.exe\\u2028');
    expect(printable('logs\\2026\\a.csv')).toBe('logs\\2026\\a.csv');
    expect(printable('é 日本 ok')).toBe('é 日本 ok');
    // A key that merely looks like an escape is told apart from one that needed escaping.
    expect(printable('lit\\x1b')).toBe('lit\\\\x1b');
    expect(printable('bs\\\x01')).toBe('bs\\\\\\x01');
    // A trailing space survives a table's trimmed line end; one inside stays a space.
    expect(printable('trail ')).toBe('trail\\x20');
    expect(printable('a b  ')).toBe('a b \\x20');
    expect(printable('bs\\ ')).toBe('bs\\\\\\x20');
    for (const key of ['trail ', 'bs\\ ', ' ', 'a\x1b[2Kb', 'lit\\x1b', 'bs\\\\b', 'bs\\\x01', 'x\\', '\\\\\\n\n', 'logs\\2026\\a\u202e.csv', '\x7f\x85\u2066']) {
      expect(printable(key)).not.toMatch(/[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/);
      expect(unprint(printable(key))).toBe(key);
    }
    expect(printableLines('line 1\nkey \x1b]0;owned\x07\r')).toBe('line 1\nkey \\x1b]0;owned\\x07\\r');
  });
});

describe('the reporter escapes what it prints for people', () => {
  afterEach(() => vi.restoreAllMocks());
  const capture = () => {
    const out: string[] = [];
    const err: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((s) => (out.push(String(s)), true));
    vi.spyOn(process.stderr, 'write').mockImplementation((s) => (err.push(String(s)), true));
    return { out, err };
  };

  it('failures, warnings, summaries and fatal errors; --json keeps the raw key', () => {
    const { out, err } = capture();
    const r = new Reporter({ quiet: false });
    r.event({ type: 'failure', bucket: 'raw', key: 'a\x1b[2K\nfake: ok', versionId: null, code: 'AccessDenied', message: 'PUT s3://raw/a\x1b[2K\nfake: ok: AccessDenied (403)' });
    r.event({ type: 'warning', message: 'pack of s3://raw/\x1b[31mred' });
    r.summary({}, 'restored s3://raw/\x1b[8mhidden\nsecond line');
    r.fatal(new StorageError('AccessDenied', 'GET s3://raw/\x1b]0;title\x07: AccessDenied', { hint: 'key \r\x1b[1A' }));
    const all = out.join('') + err.join('');
    expect(all).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f]/);
    expect(err.join('')).toContain('failed: raw/a\\x1b[2K\\nfake: ok: PUT s3://raw/a\\x1b[2K\\nfake: ok: AccessDenied (403)\n');
    expect(out.join('')).toBe('restored s3://raw/\\x1b[8mhidden\nsecond line\n');

    out.length = 0;
    err.length = 0;
    // A dry run's line per key: a newline in a key must not print a second, forged action line.
    r.event({ type: 'action', action: 'write', bucket: 'raw', key: 'x\nwould delete          raw/keep', size: 1 });
    r.event({ type: 'action', action: 'write', bucket: 'raw', key: 'lit\\x1b', size: 1 });
    expect(out.join('')).toBe('would write          raw/x\\nwould delete          raw/keep (1 B)\nwould write          raw/lit\\\\x1b (1 B)\n');

    // A drill's damaged keys are in its summary text, where line breaks stay: the key's are escaped.
    const drill = { id: 'd', recorded: true, scope: 's', state: 'run r', ok: false, objects: { selected: 1, sampled: 1, restored: 0, verified: 0, damaged: 1 }, bytes: 0, rtoMs: 1, verifyMs: 1, rpoMs: null, run: null, scratch: '/tmp/x/', kept: false, cleanupFailed: 0, damaged: [{ bucket: 'raw', key: 'k\n  damaged   raw/other', problem: 'not restored: k\nx' }] } as unknown as DrillReport;
    expect(describeDrill(drill).split('\n').filter((l) => l.startsWith('  damaged'))).toEqual(['  damaged   raw/k\\n  damaged   raw/other: not restored: k\\nx']);

    // So are the keys `catalog rebuild` lists as left out.
    const rebuild = { installed: true, catalog: 'c.db', durationMs: 1, runs: 1, versions: 1, failures: 0, blobs: 1, packs: 1, indexFiles: 1, bytesRead: 1, movedAside: null, previousRuns: null, damage: [], missingCount: 1, missing: [{ bucket: 'raw', key: 'k\n  raw/forged', versionId: null, run: 'r', blob: 'b' }] } as unknown as RebuildReport;
    expect(describeRebuild(rebuild, 'file:///repo/').split('\n').filter((l) => l.includes('raw/'))).toEqual(['  raw/k\\n  raw/forged from run r: blob b']);

    out.length = 0;
    err.length = 0;
    const json = new Reporter({ json: true });
    json.event({ type: 'failure', bucket: 'raw', key: 'a\x1bb', versionId: null, code: 'X', message: 'm' });
    expect(JSON.parse(err.join('')).key).toBe('a\x1bb');
  });
});

describe('CSV cells cannot become formulas', () => {
  it('prefixes a single quote to cells starting with = + - @ tab or CR, quotes per RFC 4180', () => {
    expect(csvRow(['raw', '=HYPERLINK("http://x")', '+1', '-2', '@SUM(A1)', '\tx', '\rx', 'ok', null])).toBe(
      `raw,"'=HYPERLINK(""http://x"")",'+1,'-2,'@SUM(A1),'\tx,"'\rx",ok,\n`,
    );
    expect(csvRow(['a,b', ' padded', 'x=1'])).toBe('"a,b"," padded",x=1\n');
  });
});
