// notify: webhooks and pings against a local HTTP receiver: what is sent when, retries with
// backoff, the 5 s cut, one warning per failing target, URLs from env/file never shown whole,
// and a backup through the CLI that a failing webhook does not fail.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Notifier, redactUrl } from '../../src/report/notify.js';
import { runCli } from '../helpers/cli.js';
import { valueOf } from '../helpers/prometheus.js';
import { tempDir, writeTree } from '../helpers/fixtures.js';

interface Received {
  path: string;
  body: string;
}

describe('notify', { timeout: 60_000 }, () => {
  let server: Server;
  let base: string;
  const received: Received[] = [];
  /** path -> statuses to answer in turn (then 200); 'hang' never answers. */
  const script = new Map<string, (number | 'hang')[]>();

  beforeAll(async () => {
    server = createServer((req: IncomingMessage, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (d: string) => (body += d));
      req.on('end', () => {
        received.push({ path: req.url ?? '', body });
        const next = script.get(req.url ?? '')?.shift() ?? 200;
        if (next === 'hang') return; // the client's timeout ends it
        res.writeHead(next).end('ok');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  beforeEach(() => {
    received.length = 0;
    script.clear();
  });

  const notifier = (policy: ConstructorParameters<typeof Notifier>[0], env: NodeJS.ProcessEnv = {}) => {
    const warnings: string[] = [];
    return { n: new Notifier(policy, { warn: (m) => warnings.push(m), baseDelayMs: 5, timeoutMs: 1000, env }), warnings };
  };

  it('a run: start, then success to webhooks; /start, then the base URL to pings', async () => {
    const { n, warnings } = notifier({ webhooks: [{ url: `${base}/hook` }], pings: [{ url: `${base}/ping/abc/` }] });
    n.runStarted({ group: 'lake' });
    await n.flush();
    n.runEnded({ group: 'lake', runId: 'r1', status: 'complete', suspect: false });
    await n.flush();
    const hooks = received.filter((r) => r.path === '/hook').map((r) => JSON.parse(r.body) as Record<string, unknown>);
    expect(hooks.map((h) => [h.event, h.group, h.source])).toEqual([['start', 'lake', 'lakeguard'], ['success', 'lake', 'lakeguard']]);
    expect(received.filter((r) => r.path.startsWith('/ping')).map((r) => r.path)).toEqual(['/ping/abc/start', '/ping/abc/']);
    expect(warnings).toEqual([]);
  });

  it('a suspect partial run: partial and anomaly to webhooks that want them, /fail to pings', async () => {
    const { n } = notifier({ webhooks: [{ url: `${base}/all` }, { url: `${base}/only-anomaly`, events: ['anomaly'] }], pings: [{ url: `${base}/p` }] });
    n.runEnded({ group: 'lake', runId: 'r2', status: 'partial', suspect: true });
    await n.flush();
    const events = (path: string) => received.filter((r) => r.path === path).map((r) => (JSON.parse(r.body) as { event: string }).event);
    expect(events('/all').sort()).toEqual(['anomaly', 'partial']);
    expect(events('/only-anomaly')).toEqual(['anomaly']);
    expect(received.filter((r) => r.path.startsWith('/p')).map((r) => r.path)).toEqual(['/p/fail']);
  });

  it('retries 5xx and timeouts with backoff; a 4xx is not retried; one warning per target, URL redacted', async () => {
    script.set('/flaky', [503, 'hang']);
    script.set('/down/secret-token?key=s3cr3t', [500, 500, 500, 500, 500, 500]);
    script.set('/gone', [404]);
    const { n, warnings } = notifier({ webhooks: [{ url: `${base}/flaky` }, { url: `${base}/down/secret-token?key=s3cr3t` }, { url: `${base}/gone` }], pings: [] });
    // One event at a time: each target's answers come in a known order.
    n.runStarted({ group: 'g' });
    await n.flush();
    n.runEnded({ group: 'g', status: 'failed', error: 'boom' });
    await n.flush();
    const count = (path: string) => received.filter((r) => r.path === path).length;
    // flaky: 503, no answer in time, then 200 for the first event; 200 for the second.
    expect(count('/flaky')).toBe(4);
    expect(count('/down/secret-token?key=s3cr3t')).toBe(6);
    expect(count('/gone')).toBe(2);
    expect(warnings, warnings.join('\n')).toHaveLength(2);
    expect(warnings.join('\n')).not.toMatch(/secret-token|s3cr3t/);
    expect(warnings.find((w) => w.startsWith('webhook 2'))).toMatch(/^webhook 2 \(http:\/\/127\.0\.0\.1:\d+\/…\): HTTP 500 after 3 attempts; the command goes on$/);
    expect(warnings.find((w) => w.startsWith('webhook 3'))).toMatch(/HTTP 404 \(not retried\)/);
  });

  it('URLs from the environment or a file; a missing one is a warning naming the variable, not the URL', async () => {
    const dir = tempDir('notify-url');
    try {
      writeFileSync(join(dir.path, 'hook-url'), `${base}/from-file/tok\n`);
      const { n, warnings } = notifier(
        { webhooks: [{ urlEnv: 'HOOK_URL' }, { urlFile: join(dir.path, 'hook-url') }, { urlEnv: 'UNSET_URL' }], pings: [] },
        { HOOK_URL: `${base}/from-env/tok` },
      );
      n.drillEnded({ ok: true, scope: 'group:lake', rtoMs: 1200 });
      await n.flush();
      expect(received.map((r) => r.path).sort()).toEqual(['/from-env/tok', '/from-file/tok']);
      expect(JSON.parse(received[0]!.body)).toMatchObject({ event: 'drill', group: 'lake', drill: { ok: true, rtoMs: 1200 } });
      expect(warnings).toEqual(['webhook 3: UNSET_URL is not set (notify url_env): nothing sent']);
    } finally {
      dir.cleanup();
    }
  });

  it('redactUrl keeps scheme and host only', () => {
    expect(redactUrl('https://user:pw@hc-ping.com/6f1c-uuid?x=1')).toBe('https://hc-ping.com/…');
    expect(redactUrl('http://127.0.0.1:8080/')).toBe('http://127.0.0.1:8080/');
  });

  it('backup through the CLI: webhooks told start and success, a failing webhook only warns', async () => {
    const dir = tempDir('notify-cli');
    try {
      script.set('/broken', [400, 400]);
      writeTree(join(dir.path, 'lake'), { 'a.json': '{}' });
      writeFileSync(
        join(dir.path, 'lakeguard.yaml'),
        `version: 1\nrepository:\n  url: file://./repo\nnotify:\n  webhooks:\n    - url: ${base}/cli\n    - url_env: BROKEN_HOOK\n  pings:\n    - url: ${base}/hc\ngroups:\n  - name: lake\n    sources:\n      - path: ./lake\n`,
      );
      const env = { LAKEGUARD_PASSWORD: 'notify-pw', BROKEN_HOOK: `${base}/broken` };
      const cli = (args: string[]) => runCli(['--policy', join(dir.path, 'lakeguard.yaml'), '--catalog', join(dir.path, 'catalog.db'), ...args], env);
      // A metrics file that cannot be written is a warning, not a failed command.
      const init = await cli(['--metrics-file', join(dir.path, 'missing-dir', 'x.prom'), 'init', '--quiet']);
      expect(init.code).toBe(0);
      expect(init.stderr).toMatch(/^warning: cannot write the metrics file .*missing-dir.*ENOENT/m);
      const metrics = join(dir.path, 'lakeguard.prom');
      const r = await cli(['--metrics-file', metrics, 'backup']);
      expect(r.code, r.stderr).toBe(0);
      // --metrics-file after a backup: the group's last run, objects, bytes, requests; the command's exit code.
      const text = readFileSync(metrics, 'utf8');
      expect(valueOf(text, 'lakeguard_backup_last_status', { group: 'lake', status: 'complete' })).toBe(1);
      expect(valueOf(text, 'lakeguard_backup_last_objects', { group: 'lake', kind: 'new' })).toBe(1);
      expect(valueOf(text, 'lakeguard_backup_last_bytes', { group: 'lake', kind: 'read' })).toBe(2);
      expect(valueOf(text, 'lakeguard_backup_last_requests', { group: 'lake', method: 'put' })).toBeGreaterThan(0);
      expect(valueOf(text, 'lakeguard_backup_last_suspect', { group: 'lake' })).toBe(0);
      expect(valueOf(text, 'lakeguard_command_last_exit_code', { command: 'backup' })).toBe(0);
      // Written atomically: no temporary file is left beside it.
      expect(readdirSync(dir.path).filter((f) => f.includes('.prom'))).toEqual(['lakeguard.prom']);
      expect(received.filter((x) => x.path === '/cli').map((x) => (JSON.parse(x.body) as { event: string }).event)).toEqual(['start', 'success']);
      expect(received.filter((x) => x.path.startsWith('/hc')).map((x) => x.path)).toEqual(['/hc/start', '/hc']);
      expect(r.stderr.match(/^warning: webhook 2 .*$/gm)).toEqual([expect.stringMatching(/^warning: webhook 2 \(http:\/\/127\.0\.0\.1:\d+\/… from \$BROKEN_HOOK\): HTTP 400 \(not retried\); the command goes on$/)]);
    } finally {
      dir.cleanup();
    }
  });
});
