#!/usr/bin/env node
// Summarizes a V8 .cpuprofile (node --cpu-prof): the functions with the most self time, and
// self time per module (dist/, node_modules package, node internals, GC, idle).
//
//   node bench/tools/cpuprofile-top.mjs FILE.cpuprofile [N]
//   node bench/tools/cpuprofile-top.mjs FILE.cpuprofile --callers FUNCTION [DEPTH]
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

function where(url, line) {
  if (!url) return '';
  const short = url.replace(/^file:\/\//, '').replace(/^.*\/node_modules\//, 'node_modules/').replace(/^.*\/(dist|src|bench)\//, '$1/');
  return `${short}:${line + 1}`;
}

function moduleOf(url, name) {
  if (!url) return name.startsWith('(') ? name : '(native)';
  if (url.startsWith('node:')) return 'node internals';
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m) return m[1];
  const d = /\/(dist|src|bench)\//.exec(url);
  return d ? `lakeguard ${d[1]}/` : url;
}

export function summarizeProfile(profile, n = 25) {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i];
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const totalUs = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const fns = new Map();
  const mods = new Map();
  for (const [id, us] of selfUs) {
    const { callFrame: cf } = byId.get(id);
    const name = cf.functionName || '(anonymous)';
    const key = `${name}\u0000${cf.url}\u0000${cf.lineNumber}`;
    const f = fns.get(key) ?? { name, where: where(cf.url, cf.lineNumber), module: moduleOf(cf.url, name), us: 0 };
    f.us += us;
    fns.set(key, f);
    const mod = moduleOf(cf.url, name);
    mods.set(mod, (mods.get(mod) ?? 0) + us);
  }
  const pct = (us) => (totalUs > 0 ? (100 * us) / totalUs : 0);
  return {
    totalMs: totalUs / 1000,
    top: [...fns.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, n)
      .map((f) => ({ name: f.name, where: f.where, module: f.module, selfMs: f.us / 1000, pct: pct(f.us) })),
    modules: [...mods.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 15)
      .map(([module, us]) => ({ module, selfMs: us / 1000, pct: pct(us) })),
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const file = process.argv[2];
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  if (process.argv[3] === '--callers') {
    // node bench/tools/cpuprofile-top.mjs FILE --callers FUNCTION [DEPTH]
    const c = callersOf(profile, process.argv[4], Number(process.argv[5] ?? 4));
    console.log(`${process.argv[4]}: ${c.totalMs.toFixed(0)} ms self time, by caller chain:`);
    for (const s of c.stacks) console.log(`${s.selfMs.toFixed(0).padStart(8)} ms  ${s.stack}`);
    process.exit(0);
  }
  const n = Number(process.argv[3] ?? 30);
  const s = summarizeProfile(profile, n);
  console.log(`${file}: ${(s.totalMs / 1000).toFixed(1)} s sampled`);
  console.log('\nself time by function:');
  for (const f of s.top) console.log(`${f.selfMs.toFixed(0).padStart(8)} ms ${f.pct.toFixed(1).padStart(5)} %  ${f.name}  ${f.where}`);
  console.log('\nself time by module:');
  for (const m of s.modules) console.log(`${m.selfMs.toFixed(0).padStart(8)} ms ${m.pct.toFixed(1).padStart(5)} %  ${m.module}`);
}

/**
 * Who calls `fnName`: self time of that function aggregated by its `depth` nearest callers
 * (outermost last), for "where does this native function get called from" questions.
 */
export function callersOf(profile, fnName, depth = 4, n = 10) {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map();
  for (const node of profile.nodes) for (const c of node.children ?? []) parent.set(c, node.id);
  const selfUs = new Map();
  for (let i = 0; i < profile.samples.length; i++) selfUs.set(profile.samples[i], (selfUs.get(profile.samples[i]) ?? 0) + (profile.timeDeltas[i] ?? 0));
  const stacks = new Map();
  let total = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (node.callFrame.functionName !== fnName) continue;
    total += us;
    const frames = [];
    for (let p = parent.get(id); p !== undefined && frames.length < depth; p = parent.get(p)) {
      const cf = byId.get(p).callFrame;
      frames.push(`${cf.functionName || '(anonymous)'} ${where(cf.url, cf.lineNumber)}`);
    }
    const key = frames.join(' <- ');
    stacks.set(key, (stacks.get(key) ?? 0) + us);
  }
  return {
    totalMs: total / 1000,
    stacks: [...stacks.entries()].sort((a, b) => b[1] - a[1]).slice(0, n).map(([stack, us]) => ({ selfMs: us / 1000, stack })),
  };
}
