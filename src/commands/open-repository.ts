import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { Catalog } from '../catalog/catalog.js';
import { confirmRepositoryIdentity } from '../engine/identity.js';
import type { Policy } from '../policy/types.js';
import type { Repository } from '../repository/repository.js';
import { envSetting } from '../util/env.js';
import { defaultCatalogPath, expectedEncryption, globalOptions, openPolicyRepository, resolvePolicy, type GlobalOptions } from './context.js';
import { mainOptionsOf } from './main-options.js';
import type { Reporter } from './reporter.js';

/** The repository alone, for commands that do not read the catalog (`catalog rebuild`, `unlock`, `migrate`). */
export async function openRepository(
  cmd: Command,
  reporter: Reporter,
  how: { rebuilding?: boolean } = {},
): Promise<{ opts: GlobalOptions; policy: Policy; repo: Repository; catalogPath: string }> {
  const opts = globalOptions(cmd);
  const policy = resolvePolicy(opts);
  const repo = await openPolicyRepository(opts, policy, reporter, mainOptionsOf(cmd));
  const catalogPath = opts.catalog ?? envSetting('LAKEGUARD_CATALOG') ?? defaultCatalogPath(repo.id);
  // The catalog, if there is a usable one, still vouches for the repository's encryption; one
  // that cannot be opened (the reason for a rebuild, perhaps) leaves the other evidence.
  let catalog: Catalog | null = null;
  try {
    if (existsSync(catalogPath)) catalog = Catalog.open(catalogPath, repo.id);
  } catch {
    catalog = null;
  }
  try {
    await confirmRepositoryIdentity(repo, catalog, expectedEncryption(opts, policy), how);
  } finally {
    catalog?.close();
  }
  return { opts, policy, repo, catalogPath };
}
