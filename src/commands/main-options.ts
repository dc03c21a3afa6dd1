import type { Command } from 'commander';
import type { ObjectStore } from '../storage/types.js';

/** Which store a `wrapStore` hook is given; only the repository's today. */
export type StoreRole = 'repository';

/**
 * What a program embedding lakeguard can change about one `main()` call. bin/lakeguard passes
 * none; tests pass them through their own launcher (test/helpers/crash-cli.mjs), so nothing a
 * user can set (environment, flags) reaches these seams.
 */
export interface MainOptions {
  /**
   * Wraps the repository's store as a command opens it, before anything is read or written
   * through it (init, and every command that opens a repository): a test wraps it to count
   * or interrupt writes. Returns the store the command uses.
   */
  wrapStore?: (store: ObjectStore, role: StoreRole) => ObjectStore;
}

/** The options of each program built by `buildProgram`, found again from any of its commands. */
const optionsByProgram = new WeakMap<Command, MainOptions>();

export function setMainOptions(program: Command, options: MainOptions): void {
  optionsByProgram.set(program, options);
}

/** The `main()` options of the program `cmd` belongs to ({} when it was built without any). */
export function mainOptionsOf(cmd: Command): MainOptions {
  let root = cmd;
  while (root.parent !== null) root = root.parent;
  return optionsByProgram.get(root) ?? {};
}
