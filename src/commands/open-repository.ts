import type { Command } from 'commander';
import type { Policy } from '../policy/types.js';
import { Repository } from '../repository/repository.js';
import { defaultCatalogPath, globalOptions, readPassword, repositoryStore, resolvePolicy, type GlobalOptions } from './context.js';

/** The repository alone, for commands that do not read the catalog (`catalog rebuild`, `unlock`). */
export async function openRepository(cmd: Command): Promise<{ opts: GlobalOptions; policy: Policy; repo: Repository; catalogPath: string }> {
  const opts = globalOptions(cmd);
  const policy = resolvePolicy(opts);
  const repo = await Repository.open(repositoryStore(policy), {
    password: async () => readPassword(opts, policy),
    ...(policy.repository.sseKmsKeyId === undefined ? {} : { sseKmsKeyId: policy.repository.sseKmsKeyId }),
  });
  const catalogPath = opts.catalog ?? process.env.LAKEGUARD_CATALOG ?? defaultCatalogPath(repo.id);
  return { opts, policy, repo, catalogPath };
}
