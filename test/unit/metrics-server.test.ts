// The /metrics endpoint of serve (and watch): bearer token on every request, only /metrics,
// and what it renders from a catalog (last run per group, last complete run, last drill),
// read by parse-prometheus-text-format.
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/catalog/catalog.js';
import { insertDrill, type DrillDocument } from '../../src/catalog/drills.js';
import { metricsBearerToken, parseListen } from '../../src/commands/serve.js';
import { addCatalogMetrics } from '../../src/report/catalog-metrics.js';
import { MetricsCollector } from '../../src/report/metrics.js';
import { startMetricsServer, type RunningMetricsServer } from '../../src/report/metrics-server.js';
import { renderPrometheus } from '../../src/report/prometheus.js';
import { at, seedQueryCatalog } from '../helpers/query-fixture.js';
import { valueOf } from '../helpers/prometheus.js';

describe('/metrics', () => {
  let cat: Catalog;
  let server: RunningMetricsServer;
  const render = (): string => {
    const m = new MetricsCollector();
    addCatalogMetrics(cat, m);
    return renderPrometheus(m.toFamilies());
  };

  beforeAll(async () => {
    cat = Catalog.open(':memory:', 'c3'.repeat(16));
    seedQueryCatalog(cat);
    const drill = (id: string, created: number, ok: boolean): DrillDocument => ({
      version: 1, id, host: 'h', created: new Date(created).toISOString(), scope: 'group:finance', state: 'run x', run: null, ok,
      objects: { selected: 5, sampled: 5, restored: ok ? 5 : 4, verified: ok ? 5 : 4, damaged: ok ? 0 : 1 }, bytes: 5000, rtoMs: ok ? 2000 : 4000, verifyMs: 100, durationMs: 2500, rpoMs: 3_600_000, damaged: [],
    });
    cat.transaction(() => {
      insertDrill(cat, drill('20261105T100000Z-aaaaaa', at(5, 10), false));
      insertDrill(cat, drill('20261106T100000Z-bbbbbb', at(6, 10), true));
    });
    server = await startMetricsServer({ host: '127.0.0.1', port: 0, token: 's3cret-token', render });
  });
  afterAll(async () => {
    await server.stop();
    cat.close();
  });

  it('answers only a request with the bearer token, and only /metrics', async () => {
    expect((await fetch(server.url)).status).toBe(401);
    expect((await fetch(server.url, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    expect((await fetch(server.url.replace('/metrics', '/other'), { headers: { authorization: 'Bearer s3cret-token' } })).status).toBe(404);
    const ok = await fetch(server.url, { headers: { authorization: 'Bearer s3cret-token' } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(parsePrometheusTextFormat(await ok.text()).length).toBeGreaterThan(5);
  });

  it('renders the last run of each group, its last complete run, and the last drill', () => {
    const text = render();
    // finance: run 3 (Nov 4, complete) is the last; logs: run 5 (interrupted) after run 4 (failed), none complete.
    expect(valueOf(text, 'lakeguard_backup_last_status', { group: 'finance', status: 'complete' })).toBe(1);
    expect(valueOf(text, 'lakeguard_backup_last_run_timestamp_seconds', { group: 'finance' })).toBe((at(4, 10) + 5 * 60_000) / 1000);
    expect(valueOf(text, 'lakeguard_backup_last_status', { group: 'logs', status: 'interrupted' })).toBe(1);
    expect(valueOf(text, 'lakeguard_backup_last_success_timestamp_seconds', { group: 'logs' })).toBeUndefined();
    expect(valueOf(text, 'lakeguard_backup_last_duration_seconds', { group: 'logs' })).toBe(300);
    expect(valueOf(text, 'lakeguard_drill_last_ok', { scope: 'group:finance' })).toBe(1);
    expect(valueOf(text, 'lakeguard_drill_rto_seconds', { scope: 'group:finance' })).toBe(2);
    expect(valueOf(text, 'lakeguard_drill_rpo_seconds', { scope: 'group:finance' })).toBe(3600);
  });

  it('serve options: the token from a file or the environment, else generated; --metrics-listen parsed', () => {
    expect(metricsBearerToken(undefined, { LAKEGUARD_METRICS_TOKEN: 'from-env\n' })).toEqual({ token: 'from-env', generated: false, from: 'LAKEGUARD_METRICS_TOKEN' });
    const generated = metricsBearerToken(undefined, {});
    expect(generated.generated).toBe(true);
    expect(generated.token).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(() => metricsBearerToken('/nonexistent/token', {})).toThrow(/cannot read --metrics-token-file \/nonexistent\/token: ENOENT/);
    expect(() => parseListen('nope', '--metrics-listen')).toThrow(/^--metrics-listen "nope": expected host:port/);
  });
});

describe('drills in calendar and for watch', () => {
  it('calendar marks the days of a passed and a failed drill and lists the failed one; lastDrillOf says when', async () => {
    const { CatalogQueries } = await import('../../src/catalog/queries.js');
    const { drillsByDay, renderCalendar } = await import('../../src/commands/calendar.js');
    const { lastDrillOf } = await import('../../src/commands/drill.js');
    const cat = Catalog.open(':memory:', 'c4'.repeat(16));
    try {
      seedQueryCatalog(cat);
      const doc = (id: string, created: number, ok: boolean): DrillDocument => ({
        version: 1, id, host: 'h', created: new Date(created).toISOString(), scope: 'group:finance', state: 's', run: null, ok,
        objects: { selected: 1, sampled: 1, restored: 1, verified: ok ? 1 : 0, damaged: ok ? 0 : 1 }, bytes: 1, rtoMs: 1, verifyMs: 1, durationMs: 1, rpoMs: null, damaged: [],
      });
      cat.transaction(() => {
        insertDrill(cat, doc('20261105T100000Z-aaaaaa', at(5, 10), false));
        insertDrill(cat, doc('20261106T100000Z-bbbbbb', at(6, 10), true));
      });
      const cal = new CatalogQueries(cat).calendar('2026-11', undefined);
      const text = renderCalendar(cal, { color: false, drills: drillsByDay(cat, cal.days, undefined) });
      expect(text).toMatch(/ 5 ◇/);
      expect(text).toMatch(/ 6 ◆/);
      expect(text).toContain('◆ restore drill passed   ◇ restore drill failed');
      expect(text).toMatch(/2 restore drills: 1 passed, 1 failed\n {2}\S+ \S+ +drill failed {2}20261105T100000Z-aaaaaa {2}group:finance {2}1 object damaged/);
      expect(drillsByDay(cat, cal.days, 'logs').size).toBe(0);
      expect(lastDrillOf(cat, 'finance')).toBe(at(6, 10));
      expect(lastDrillOf(cat, 'logs')).toBeNull();
    } finally {
      cat.close();
    }
  });
});
