// A second RADOS Gateway on the test cluster (same users and buckets, its own port), for what
// the main one of scripts/s3-server.sh lacks: its STS API, or zone settings added after it
// started (it reads them only at start). Started by the tests that need it, and stopped by
// them: only this process, by its id.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface StsGateway {
  endpoint: string;
  stop: () => Promise<void>;
}

/** Starts the gateway with STS on and waits until it answers HTTP (up to 60 s). */
export function startStsGateway(): Promise<StsGateway> {
  return startPrivateGateway('lgsts', 'rgw sts key = lakeguardstskey1\nrgw s3 auth use sts = true\n');
}

/** Starts a gateway with `extraConf` in its section and waits until it answers HTTP (up to 60 s). */
export async function startPrivateGateway(label: string, extraConf = ''): Promise<StsGateway> {
  const clusterConf = join(process.env.LAKEGUARD_S3_DIR ?? '/tmp/lakeguard-s3', 'ceph.conf');
  const dir = mkdtempSync(join(tmpdir(), `lakeguard-${label}-gw-`));
  const port = await freePort();
  const name = `client.rgw.${label}${process.pid}`;
  const conf = readFileSync(clusterConf, 'utf8').replace(/^log file = .*$/m, `log file = ${dir}/$name.log`);
  writeFileSync(
    join(dir, 'ceph.conf'),
    `${conf}
[${name}]
admin socket = ${dir}/$name.asok
rgw frontends = beast endpoint=127.0.0.1:${port} tcp_nodelay=1
rgw data = ${dir}/rgw
rgw enable ops log = false
${extraConf}`,
  );
  const child: ChildProcess = spawn('radosgw', ['-n', name, '-f', '-c', join(dir, 'ceph.conf')], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    child.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  const endpoint = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`radosgw ${label} exited (${child.exitCode}); see its log in ${dir}`);
    }
    const up = await fetch(endpoint).then(
      () => true,
      () => false,
    );
    if (up) return { endpoint, stop };
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`radosgw ${label} did not answer on ${endpoint} within 60 s`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}
