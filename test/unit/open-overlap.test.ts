// Start-up: a command opens its catalog while the repository's keys are derived. Repository.open
// tells the id of the config it read from a later turn of the event loop, before the keys are
// unlocked; the id is that of the repository it then opens, and a wrong password still fails
// the open (the command then closes what it opened meanwhile: src/commands/context.ts).
import { describe, expect, it } from 'vitest';
import { Repository } from '../../src/repository/repository.js';
import { MemStore } from '../../src/storage/mem-store.js';
import { initRepo } from '../helpers/fixtures.js';

describe('Repository.open tells the config id before it derives the keys', () => {
  it('calls onConfig once, after asking for the password and before the open resolves', async () => {
    const store = new MemStore();
    const created = await initRepo(store);
    const events: string[] = [];
    const repo = await Repository.open(store, {
      password: async () => {
        events.push('password');
        return 'test-password';
      },
      onConfig: (id) => events.push(`config ${id}`),
    });
    events.push('opened');
    expect(repo.id).toBe(created.id);
    expect(events).toEqual(['password', `config ${created.id}`, 'opened']);
  });

  it('a wrong password fails the open after the id was told', async () => {
    const store = new MemStore();
    const created = await initRepo(store);
    const told: string[] = [];
    await expect(Repository.open(store, { password: async () => 'wrong', onConfig: (id) => told.push(id) })).rejects.toThrow(/password/i);
    expect(told).toEqual([created.id]);
  });
});
