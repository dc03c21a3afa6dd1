import { createRequire } from 'node:module';

/**
 * lakeguard's version, read from package.json. Its own module so that the single-file binary's
 * bundler (scripts/build-binary.mjs) can put the literal in its place: the binary has no
 * package.json beside it.
 */
export const { version } = createRequire(import.meta.url)('../package.json') as { version: string };
