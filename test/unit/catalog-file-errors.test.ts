// A catalog file SQLite cannot write or lock in the middle of a command (another process holds
// it, the disk is full) is named in one line with what to do, never a bare "database is locked".
import { Command } from 'commander';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/catalog/catalog.js';
import { sqliteDatabase } from '../../src/catalog/connection.js';
import { action, outcome } from '../../src/commands/action.js';
import { tempDir } from '../helpers/fixtures.js';
import { capturingStderr } from '../helpers/stderr.js';

describe('catalog file errors', () => {
  const dir = tempDir('catalog-file-errors');
  afterAll(() => dir.cleanup());

  /** Runs `body` as a command with --json and returns its exit code and stderr lines. */
  async function run(body: () => never): Promise<{ code: number; lines: Record<string, unknown>[] }> {
    const cmd = new Command('x').option('--json');
    cmd.setOptionValue('json', true);
    const stderr = await capturingStderr(() => action(async () => body())({}, cmd));
    return { code: outcome.code, lines: stderr.trim().split('\n').map((l) => JSON.parse(l)) };
  }

  it('a catalog locked by another process, and a full disk: exit 1 naming the file and the next step', async () => {
    const path = join(dir.path, 'catalog.db');
    const catalog = Catalog.open(path, 'a'.repeat(32));
    const other = new (sqliteDatabase())(path);
    other.exec('BEGIN EXCLUSIVE');
    const mine = new (sqliteDatabase())(path);
    mine.pragma('busy_timeout = 0');
    let busy: unknown;
    try {
      mine.exec('CREATE TABLE t (x)');
    } catch (err) {
      busy = err;
    }
    expect((busy as { code: string }).code).toMatch(/^SQLITE_BUSY/);
    const locked = await run(() => {
      throw busy;
    });
    expect(locked.code).toBe(1);
    expect(locked.lines).toHaveLength(1);
    expect(locked.lines[0]).toMatchObject({ message_type: 'exit_error', code: 1, message: `catalog ${path}: database is locked` });
    expect(locked.lines[0]!.hint).toMatch(/another process holds the catalog file.*--catalog FILE/);

    const full = await run(() => {
      throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
    });
    expect(full.lines[0]).toMatchObject({ message_type: 'exit_error', code: 1, message: `catalog ${path}: database or disk is full` });
    expect(full.lines[0]!.hint).toMatch(/disk holding the catalog is full/);
    other.exec('ROLLBACK');
    other.close();
    mine.close();
    catalog.close();
  });
});
