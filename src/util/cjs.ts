import { createRequire } from 'node:module';

/**
 * Loads a CommonJS package with require instead of import. An ES import of a CommonJS module
 * first scans its source for named exports: ~10 ms per package (better-sqlite3, zstd-napi,
 * commander) that every command paid at start, measured in bench/README.md.
 */
export const requireCjs = createRequire(import.meta.url);
