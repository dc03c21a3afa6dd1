import type { Command } from 'commander';
import { describeLock, removeLocks, type FoundLock } from '../repository/locks.js';
import { action } from './action.js';
import { openRepository } from './open-repository.js';

export function register(program: Command): void {
  program
    .command('unlock')
    .description('remove stale repository locks (process gone on this host, or not refreshed for 30 minutes)')
    .option('--remove-all', 'remove every lock, also those of operations that may still be running (dangerous)')
    .addHelpText(
      'after',
      `
Each removed lock is printed with its type, operation, host, pid and time. Live locks are
kept and listed unless --remove-all is given: removing the lock of a running operation lets a
conflicting one start (a prune could delete data a running backup is about to refer to).`,
    )
    .action(
      action(async ({ cmd, reporter }) => {
        const opts = cmd.opts<{ removeAll?: boolean }>();
        const { repo } = await openRepository(cmd, reporter);
        const all = opts.removeAll ?? false;
        const { removed, kept } = await removeLocks(repo, { all });
        const live = removed.filter((l) => !l.stale);
        if (live.length > 0) {
          reporter.event({
            type: 'warning',
            message: `--remove-all removed ${live.length} lock${live.length === 1 ? '' : 's'} that looked active: if ${live.length === 1 ? 'that operation is' : 'those operations are'} still running, stop ${live.length === 1 ? 'it' : 'them'} before starting a conflicting one`,
          });
        }
        const lines = [
          ...removed.map((l) => `removed ${l.stale ? 'stale ' : 'ACTIVE '}lock ${l.id}: ${what(l)}`),
          ...kept.map((l) => `kept active lock ${l.id}: ${what(l)}`),
        ];
        if (removed.length === 0) lines.push(kept.length === 0 ? 'no locks' : 'no stale locks (use --remove-all only if you are sure the operations above are gone)');
        reporter.summary(
          { removed: removed.map(toJson), kept: kept.map(toJson) },
          lines.join('\n'),
        );
      }),
    );
}

function what(l: FoundLock): string {
  return `${l.info === null ? 'unreadable lock object' : describeLock(l.info)}${l.reason === null ? '' : `; ${l.reason}`}`;
}

function toJson(l: FoundLock): Record<string, unknown> {
  return { id: l.id, stale: l.stale, reason: l.reason, ...(l.info ?? {}) };
}
