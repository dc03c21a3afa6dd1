// The policy's notify: and drill: sections: what they hold once parsed, and the one-line
// errors for what is wrong in them (file:line, the field, what to write instead).
import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../src/policy/index.js';

const BASE = 'version: 1\nrepository:\n  url: s3://backups/lg\ngroups:\n  - name: lake\n    sources:\n      - bucket: raw\n';

describe('notify: and drill: in the policy', () => {
  it('parses webhooks, pings and a drill schedule', () => {
    const policy = parsePolicy(
      `${BASE}notify:\n  webhooks:\n    - url: https://hooks.example.com/lakeguard\n      events: [failure, anomaly, drill]\n    - url_env: SLACK_HOOK_URL\n  pings:\n    - url_file: ./hc-url\ndrill:\n  every: 7d\n  sample: 50\n  to: s3://scratch/drills/\n`,
      '/etc/lakeguard/policy.yaml',
    );
    expect(policy.notify).toEqual({
      webhooks: [{ url: 'https://hooks.example.com/lakeguard', events: ['failure', 'anomaly', 'drill'] }, { urlEnv: 'SLACK_HOOK_URL' }],
      pings: [{ urlFile: '/etc/lakeguard/hc-url' }],
    });
    expect(policy.drill).toEqual({ everyMs: 7 * 86_400_000, sample: 50, to: 's3://scratch/drills/' });
  });

  it.each([
    ['webhooks:\n    - url: https://a/\n      url_env: HOOK\n', /policy\.yaml:10:\d+ .*set only one of url, url_env and url_file \(url and url_env are set\)/],
    ['webhooks:\n    - url: https://a/\n      events: [sucess]\n', /policy\.yaml:11:\d+ .*unknown event "sucess": expected start, success, partial, failure, anomaly, drill/],
    ['pings:\n    - url: ftp://hc/\n', /policy\.yaml:10:\d+ .*expected an http:\/\/ or https:\/\/ URL \(a URL holding a token belongs in url_env or url_file\)/],
    ['webhooks:\n    - token: abc\n', /secrets do not belong in the policy/],
  ])('notify: %j is refused', (section, message) => {
    expect(() => parsePolicy(`${BASE}notify:\n  ${section}`, 'policy.yaml')).toThrow(message);
  });

  it.each([
    ['every: 7d\n  sample: 5\n', /policy\.yaml:8:\d+ drill\.to: required, e\.g\. to: s3:\/\/scratch-bucket\/drills\//],
    ['every: weekly\n  to: s3://s/\n', /expected an interval such as 12h, 7d or 2w, got "weekly"/],
    ['every: 1d\n  to: s3://s/\n  to_dir: /tmp/d\n', /set only one of to and to_dir/],
  ])('drill: %j is refused', (section, message) => {
    expect(() => parsePolicy(`${BASE}drill:\n  ${section}`, 'policy.yaml')).toThrow(message);
  });
});
