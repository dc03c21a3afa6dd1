import type { Command } from 'commander';
import { Catalog } from '../catalog/catalog.js';
import { Repository } from '../repository/repository.js';
import { action } from './action.js';
import { defaultCatalogPath, globalOptions, readPassword, repositoryStore, resolvePolicy } from './context.js';

export function register(program: Command): void {
  program
    .command('init')
    .description('create a new repository at repository.url (never overwrites one)')
    .addHelpText('after', '\nExit status: 0 created, 1 error (e.g. bucket missing), 2 bad usage or policy, or a repository already exists.')
    .action(
      action(async ({ cmd, reporter }) => {
        const opts = globalOptions(cmd);
        const policy = resolvePolicy(opts);
        const r = policy.repository;
        const store = repositoryStore(policy);
        const password = r.encryption === 'none' ? null : readPassword(opts, policy);
        const repo = await Repository.init(
          store,
          {
            password,
            ...(r.packSize === undefined ? {} : { packSize: r.packSize }),
            ...(r.compressionLevel === undefined ? {} : { compressionLevel: r.compressionLevel }),
          },
          r.sseKmsKeyId === undefined ? {} : { sseKmsKeyId: r.sseKmsKeyId },
        );
        const catalogPath = opts.catalog ?? process.env.LAKEGUARD_CATALOG ?? defaultCatalogPath(repo.id);
        Catalog.open(catalogPath, repo.id).close();
        reporter.summary(
          { repository: store.location, id: repo.id, encrypted: repo.encrypted, catalog: catalogPath },
          `created ${repo.encrypted ? 'encrypted' : 'unencrypted'} repository ${repo.id} at ${store.location}\ncatalog: ${catalogPath}`,
        );
      }),
    );
}
