// bin/lakeguard is both a shell script and a JavaScript module: run as a program it sets glibc
// malloc defaults (they must be in the environment before node starts) and starts node with
// --expose-gc and LAKEGUARD_NODE_FLAGS; run with `node bin/lakeguard` the shell line is a comment.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const BIN = fileURLToPath(new URL('../../bin/lakeguard', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'lakeguard-launcher-'));
// Preloaded through LAKEGUARD_NODE_FLAGS: reports what the node process was started with.
const probe = join(dir, 'probe.cjs');
writeFileSync(probe, "process.stderr.write(`probe ${process.env.MALLOC_ARENA_MAX} ${process.env.MALLOC_MMAP_THRESHOLD_}\\n`);\n");
// The same, for the gc function the heap pacer uses (a global only with --expose-gc).
const gcProbe = join(dir, 'gc-probe.cjs');
writeFileSync(gcProbe, 'process.stderr.write(`gc ${typeof globalThis.gc}\\n`);\n');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(cmd: string, args: string[], env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
  const base = { PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`, HOME: dir };
  const r = spawnSync(cmd, args, { env: { ...base, ...env }, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('bin/lakeguard', () => {
  it('runs as a program and under node alike', () => {
    const direct = run(BIN, ['--version']);
    const viaNode = run(process.execPath, [BIN, '--version']);
    expect(direct.status).toBe(0);
    expect(direct.stdout).toMatch(/^\d+\.\d+\.\d+/);
    expect(viaNode.status).toBe(0);
    expect(viaNode.stdout).toBe(direct.stdout);
  });

  it('sets the malloc defaults before node starts, and passes LAKEGUARD_NODE_FLAGS to node', () => {
    const r = run(BIN, ['--version'], { LAKEGUARD_NODE_FLAGS: `--require ${probe}` });
    expect(r.status).toBe(0);
    expect(r.stderr).toContain('probe 2 131072');
  });

  it('starts node with --expose-gc, for the heap pacer; `node bin/lakeguard` runs with node as given', () => {
    const direct = run(BIN, ['--version'], { LAKEGUARD_NODE_FLAGS: `--require ${gcProbe}` });
    expect(direct.status).toBe(0);
    expect(direct.stderr).toContain('gc function');
    const viaNode = run(process.execPath, ['--require', gcProbe, BIN, '--version']);
    expect(viaNode.status).toBe(0);
    expect(viaNode.stderr).toContain('gc undefined');
  });

  it('keeps values already in the environment', () => {
    const r = run(BIN, ['--version'], { LAKEGUARD_NODE_FLAGS: `--require ${probe}`, MALLOC_ARENA_MAX: '4', MALLOC_MMAP_THRESHOLD_: '65536' });
    expect(r.stderr).toContain('probe 4 65536');
  });

  it('passes arguments through unchanged', () => {
    const r = run(BIN, ['--policy', join(dir, 'no such dir', "it's.yaml"), 'runs']);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain("it's.yaml");
  });
});
