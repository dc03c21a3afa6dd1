// A catalog holds in plaintext what an encrypted repository seals (object keys, sizes,
// metadata, tags): its file, its WAL and the directories created for it are the owner's alone.
import { chmodSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/catalog/catalog.js';
import { tempDir } from '../helpers/fixtures.js';

const mode = (path: string): number => statSync(path).mode & 0o777;

describe('catalog file mode', () => {
  let dir: ReturnType<typeof tempDir>;
  beforeEach(() => {
    dir = tempDir('catalog-mode');
  });
  afterEach(() => dir.cleanup());

  it('a new catalog is 0600 (and its -wal), in directories created 0700', () => {
    const path = join(dir.path, 'cache', 'lakeguard', '0123456789abcdef0123456789abcdef', 'catalog.db');
    const catalog = Catalog.open(path, '0123456789abcdef0123456789abcdef');
    try {
      expect(mode(path)).toBe(0o600);
      expect(mode(`${path}-wal`)).toBe(0o600);
      expect(mode(join(dir.path, 'cache'))).toBe(0o700);
      expect(mode(join(dir.path, 'cache', 'lakeguard', '0123456789abcdef0123456789abcdef'))).toBe(0o700);
    } finally {
      catalog.close();
    }
  });

  it('an existing catalog file and directory keep their modes', () => {
    const shared = join(dir.path, 'shared');
    mkdirSync(shared, { mode: 0o755 });
    chmodSync(shared, 0o755);
    const path = join(shared, 'catalog.db');
    writeFileSync(path, '');
    chmodSync(path, 0o640);
    Catalog.open(path, '0123456789abcdef0123456789abcdef').close();
    expect(mode(path)).toBe(0o640);
    expect(mode(shared)).toBe(0o755);
  });
});
