// Test launcher for crash tests: lakeguard as bin/lakeguard runs it, except that the process
// kills itself with SIGKILL just before its N-th write (PUT or DELETE) to the repository, so a
// test can stop a command at an exact point of its write sequence instead of at a timer's
// mercy. It reaches lakeguard through the test entry point, main(argv, { wrapStore }) of
// dist/cli.js: nothing in the shipped program (no environment variable, no flag) can do this.
//
//   node --expose-gc test/helpers/crash-cli.mjs N [lakeguard arguments...]
//   node --expose-gc test/helpers/crash-cli.mjs after-first-pack [lakeguard arguments...]
//
// N below 1 (or not a whole number) never kills. `after-first-pack` kills the process as soon
// as its first pack PUT (a key under packs/) has succeeded: the pack is in the repository, and
// nothing after it (index, manifest) is. test/helpers/cli.ts runs it (runCliKilledBeforeWrite,
// runCliKilledAfterFirstPack).

/**
 * The store as the command sees it: every call goes to `store`, but the N-th write (PUT or
 * DELETE, counted from when the command opened the repository) is never sent: the process dies first.
 * @param {import('../../src/storage/types.js').ObjectStore} store
 * @param {number} n
 * @returns {import('../../src/storage/types.js').ObjectStore}
 */
function killBeforeWrite(store, n) {
  if (!Number.isInteger(n) || n < 1) return store;
  let writes = 0;
  return new Proxy(store, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== 'function') return value;
      if (prop !== 'put' && prop !== 'delete') return value.bind(target);
      return (...args) => {
        if (++writes >= n) process.kill(process.pid, 'SIGKILL');
        return value.apply(target, args);
      };
    },
  });
}

/**
 * The store as the command sees it, except that the process dies (SIGKILL) the moment its
 * first PUT of a pack has been answered with success.
 * @param {import('../../src/storage/types.js').ObjectStore} store
 * @returns {import('../../src/storage/types.js').ObjectStore}
 */
function killAfterFirstPack(store) {
  return new Proxy(store, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== 'function') return value;
      if (prop !== 'put') return value.bind(target);
      return async (...args) => {
        const result = await value.apply(target, args);
        if (String(args[0]).startsWith('packs/')) process.kill(process.pid, 'SIGKILL');
        return result;
      };
    },
  });
}

const [, script, n, ...args] = process.argv;
// As bin/lakeguard (whose shell line also sets malloc defaults: they change memory, not behaviour).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
process.env.UV_THREADPOOL_SIZE ??= '16';
const { main } = await import('../../dist/cli.js');
const { startHeapPacer } = await import('../../dist/util/heap-pacer.js');
startHeapPacer();
process.exitCode = await main([process.execPath, script, ...args], {
  wrapStore: (store, role) => (role !== 'repository' ? store : n === 'after-first-pack' ? killAfterFirstPack(store) : killBeforeWrite(store, Number(n))),
});
