// The lean transport serves a bucket only where it sends requests exactly where the SDK would.
// For each setting (store options, environment, shared config file, selected profile), either
// the lean path's endpoint equals the one the SDK resolves for the same store (asked of the
// SDK's own client, stopped before anything is signed or sent), or the SDK transport is chosen.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { endpointKeyInProfile, sdkEndpointReason } from '../../src/storage/s3-endpoint.js';
import type { LeanTransport } from '../../src/storage/s3-lean-transport.js';
import type { SdkTransport } from '../../src/storage/s3-sdk-transport.js';
import { S3Store, type S3StoreOptions } from '../../src/storage/s3-store.js';

interface Case {
  name: string;
  store: Partial<S3StoreOptions>;
  env?: Record<string, string>;
  /** The shared config file (AWS_CONFIG_FILE). */
  config?: string;
  /** The shared credentials file (AWS_SHARED_CREDENTIALS_FILE). */
  credentialsFile?: string;
  /** The lean path's request URL of key `k`, or 'sdk' when the SDK transport must serve the bucket. */
  expect: string;
}

const CASES: Case[] = [
  { name: 'custom endpoint, path style', store: { endpoint: 'http://127.0.0.1:7480', region: 'us-east-1' }, expect: 'http://127.0.0.1:7480/my-lake/k' },
  { name: 'custom https endpoint with a port and a trailing slash', store: { endpoint: 'https://s3.example.com:9000/', region: 'eu-west-1' }, expect: 'https://s3.example.com:9000/my-lake/k' },
  { name: 'custom endpoint, region from AWS_REGION', store: { endpoint: 'http://127.0.0.1:7480' }, env: { AWS_REGION: 'eu-north-1' }, expect: 'http://127.0.0.1:7480/my-lake/k' },
  { name: 'custom endpoint, AWS_ENDPOINT_URL set too (the store option wins)', store: { endpoint: 'http://127.0.0.1:7480', region: 'us-east-1' }, env: { AWS_ENDPOINT_URL: 'http://127.0.0.1:9999' }, expect: 'http://127.0.0.1:7480/my-lake/k' },
  { name: 'custom endpoint with a path', store: { endpoint: 'http://127.0.0.1:7480/s3', region: 'us-east-1' }, expect: 'sdk' },
  { name: 'custom endpoint, virtual-hosted', store: { endpoint: 'http://s3.example.com', region: 'us-east-1', forcePathStyle: false }, expect: 'sdk' },
  { name: 'custom endpoint with FIPS in the environment', store: { endpoint: 'http://127.0.0.1:7480', region: 'us-east-1' }, env: { AWS_USE_FIPS_ENDPOINT: 'true' }, expect: 'sdk' },
  { name: 'AWS, region option', store: { region: 'eu-west-1' }, expect: 'https://my-lake.s3.eu-west-1.amazonaws.com/k' },
  { name: 'AWS, us-east-1', store: { region: 'us-east-1' }, expect: 'https://my-lake.s3.us-east-1.amazonaws.com/k' },
  { name: 'AWS, China', store: { region: 'cn-north-1' }, expect: 'https://my-lake.s3.cn-north-1.amazonaws.com.cn/k' },
  { name: 'AWS, GovCloud', store: { region: 'us-gov-west-1' }, expect: 'https://my-lake.s3.us-gov-west-1.amazonaws.com/k' },
  { name: 'AWS, region from AWS_REGION', store: {}, env: { AWS_REGION: 'ap-southeast-2' }, expect: 'https://my-lake.s3.ap-southeast-2.amazonaws.com/k' },
  { name: 'AWS, region from the default profile', store: {}, config: '[default]\nregion = eu-central-1\n', expect: 'https://my-lake.s3.eu-central-1.amazonaws.com/k' },
  { name: 'AWS, region from AWS_PROFILE', store: {}, env: { AWS_PROFILE: 'lake' }, config: '[default]\nregion = eu-west-3\n[profile lake]\nregion = sa-east-1\n', expect: 'https://my-lake.s3.sa-east-1.amazonaws.com/k' },
  { name: 'AWS, FIPS false in the environment', store: { region: 'us-west-2' }, env: { AWS_USE_FIPS_ENDPOINT: 'false', AWS_USE_DUALSTACK_ENDPOINT: 'false' }, expect: 'https://my-lake.s3.us-west-2.amazonaws.com/k' },
  { name: 'AWS, FIPS set in a profile that is not selected', store: { region: 'us-west-2' }, config: '[profile other]\nuse_fips_endpoint = true\nendpoint_url = http://other\n', expect: 'https://my-lake.s3.us-west-2.amazonaws.com/k' },
  { name: 'AWS, the AWS CLI\'s s3 sub-settings in the profile (the SDK reads none)', store: { region: 'us-west-2' }, config: '[default]\ns3 =\n  addressing_style = path\n  max_concurrent_requests = 20\n', expect: 'https://my-lake.s3.us-west-2.amazonaws.com/k' },
  { name: 'AWS, commented-out settings', store: { region: 'us-west-2' }, config: '[default]\n# use_fips_endpoint = true\n;endpoint_url = http://x\nregion = us-west-2\n', expect: 'https://my-lake.s3.us-west-2.amazonaws.com/k' },
  { name: 'AWS_USE_FIPS_ENDPOINT', store: { region: 'us-east-1' }, env: { AWS_USE_FIPS_ENDPOINT: 'true' }, expect: 'sdk' },
  { name: 'AWS_USE_DUALSTACK_ENDPOINT', store: { region: 'us-east-1' }, env: { AWS_USE_DUALSTACK_ENDPOINT: 'true' }, expect: 'sdk' },
  { name: 'AWS_ENDPOINT_URL', store: { region: 'us-east-1' }, env: { AWS_ENDPOINT_URL: 'http://127.0.0.1:9999' }, expect: 'sdk' },
  { name: 'AWS_ENDPOINT_URL_S3', store: { region: 'us-east-1' }, env: { AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9999' }, expect: 'sdk' },
  { name: 'use_fips_endpoint in the default profile', store: { region: 'us-east-1' }, config: '[default]\nuse_fips_endpoint = true\n', expect: 'sdk' },
  { name: 'use_dualstack_endpoint in the selected profile', store: { region: 'us-east-1' }, env: { AWS_PROFILE: 'lake' }, config: '[profile lake]\nregion = us-east-1\nuse_dualstack_endpoint = true\n', expect: 'sdk' },
  { name: "the store's own profile: its region, not AWS_PROFILE's endpoint", store: { profile: 'backup' }, env: { AWS_PROFILE: 'lake' }, config: '[profile lake]\nregion = sa-east-1\nendpoint_url = http://127.0.0.1:9999\n[profile backup]\nregion = eu-west-2\n', expect: 'https://my-lake.s3.eu-west-2.amazonaws.com/k' },
  { name: "endpoint_url in the store's own profile", store: { profile: 'backup', region: 'us-east-1' }, config: '[profile backup]\nregion = us-east-1\nendpoint_url = http://127.0.0.1:9999\n', expect: 'sdk' },
  { name: 'endpoint_url in the selected profile', store: {}, env: { AWS_PROFILE: 'lake' }, config: '[profile lake]\nregion = us-east-1\nendpoint_url = http://127.0.0.1:9999\n', expect: 'sdk' },
  { name: 'a services section', store: { region: 'us-east-1' }, config: '[default]\nservices = mine\n[services mine]\ns3 =\n  endpoint_url = http://127.0.0.1:9999\n', expect: 'sdk' },
  { name: 'endpoint_url in the credentials file', store: { region: 'us-east-1' }, credentialsFile: '[default]\nendpoint_url = http://127.0.0.1:9999\n', expect: 'sdk' },
  { name: 'a bucket name with dots', store: { region: 'eu-west-1', bucket: 'my.lake' }, expect: 'sdk' },
  { name: 'an S3 Express directory bucket', store: { region: 'us-east-1', bucket: 'my-lake--use1-az4--x-s3' }, expect: 'sdk' },
  { name: 'a FIPS pseudo-region', store: { region: 'fips-us-east-1' }, expect: 'sdk' },
  { name: 'the global pseudo-region', store: { region: 'aws-global' }, expect: 'sdk' },
  { name: 'path style on AWS', store: { region: 'us-east-1', forcePathStyle: true }, expect: 'sdk' },
  { name: 'the switch LAKEGUARD_S3_TRANSPORT=sdk', store: { endpoint: 'http://127.0.0.1:7480', region: 'us-east-1' }, env: { LAKEGUARD_S3_TRANSPORT: 'sdk' }, expect: 'sdk' },
];

const dir = mkdtempSync(join(tmpdir(), 'lg-endpoint-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The URL the SDK's client would send GetObject of `k` to (stopped before signing). */
async function sdkUrl(client: S3Client, bucket: string): Promise<string> {
  let url = '';
  const command = new GetObjectCommand({ Bucket: bucket, Key: 'k' });
  command.middlewareStack.add(
    () => (args) => {
      const r = args.request as { protocol: string; hostname: string; port?: number; path: string };
      url = `${r.protocol}//${r.hostname}${r.port ? `:${r.port}` : ''}${r.path}`;
      return Promise.reject(new Error('captured'));
    },
    { step: 'build', priority: 'high' },
  );
  await client.send(command).catch((err: unknown) => {
    if ((err as Error).message !== 'captured') throw err;
  });
  return url;
}

describe('lean endpoint resolution matches the SDK', () => {
  const saved = { ...process.env };
  beforeEach(() => {
    for (const k of Object.keys(process.env)) if (k.startsWith('AWS_') || k.startsWith('LAKEGUARD_S3_')) delete process.env[k];
  });
  afterEach(() => {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  });

  CASES.forEach((c, i) => {
    it(`${c.name} → ${c.expect}`, async () => {
      // A file per case: the SDK caches the shared files it has read, by path.
      const config = join(dir, `config-${i}`);
      const credentials = join(dir, `credentials-${i}`);
      if (c.config !== undefined) writeFileSync(config, c.config);
      if (c.credentialsFile !== undefined) writeFileSync(credentials, c.credentialsFile);
      Object.assign(process.env, { AWS_CONFIG_FILE: config, AWS_SHARED_CREDENTIALS_FILE: credentials, AWS_EC2_METADATA_DISABLED: 'true', ...c.env });
      const opts: S3StoreOptions = { bucket: 'my-lake', credentials: { accessKeyId: 'AK', secretAccessKey: 'SK' }, ...c.store };
      const store = new S3Store(opts);
      try {
        const target = store.transport.kind === 'lean' ? await (store.transport as LeanTransport).resolve() : null;
        if (c.expect === 'sdk') {
          expect(target).toBeNull();
          return;
        }
        expect(target).not.toBeNull();
        const lean = `${target!.origin.origin}${target!.pathStyle ? `/${opts.bucket}/` : '/'}k`;
        expect(lean).toBe(c.expect);
        // The same store on the SDK's path, asked where it would send the request.
        process.env.LAKEGUARD_S3_TRANSPORT = 'sdk';
        const sdkStore = new S3Store(opts);
        try {
          expect(await sdkUrl((sdkStore.transport as SdkTransport).client, opts.bucket)).toBe(lean);
        } finally {
          sdkStore.destroy();
        }
      } finally {
        store.destroy();
      }
    });
  });

  it('refuses a misspelt LAKEGUARD_S3_TRANSPORT instead of keeping the lean path', () => {
    process.env.LAKEGUARD_S3_TRANSPORT = 'SDK';
    expect(() => new S3Store({ bucket: 'my-lake', endpoint: 'http://127.0.0.1:7480', region: 'us-east-1', credentials: { accessKeyId: 'AK', secretAccessKey: 'SK' } })).toThrow(
      /LAKEGUARD_S3_TRANSPORT=SDK is not a transport/,
    );
    process.env.LAKEGUARD_S3_TRANSPORT = 'lean';
    const store = new S3Store({ bucket: 'my-lake', endpoint: 'http://127.0.0.1:7480', region: 'us-east-1', credentials: { accessKeyId: 'AK', secretAccessKey: 'SK' } });
    try {
      expect(store.transport.kind).toBe('lean');
    } finally {
      store.destroy();
    }
  });

  it('reads profiles as the SDK does: [profile x] in the config file, [x] in the credentials file, indented sub-settings', () => {
    const text = '[default]\nregion = us-east-1\n[profile a]\ns3 =\n  endpoint_url = http://sub\nuse_fips_endpoint = true\n[b]\nendpoint_url = http://x\n';
    expect(endpointKeyInProfile(text, 'default', true)).toBeNull();
    expect(endpointKeyInProfile(text, 'a', true)).toBe('use_fips_endpoint');
    expect(endpointKeyInProfile(text, 'b', true)).toBe('endpoint_url');
    expect(endpointKeyInProfile(text, 'b', false)).toBe('endpoint_url');
    expect(endpointKeyInProfile('[profile b]\nendpoint_url = http://x\n', 'b', false)).toBeNull();
    expect(sdkEndpointReason({ endpoint: undefined, bucket: 'my-lake', pathStyle: false }, { AWS_CONFIG_FILE: join(dir, 'none'), AWS_SHARED_CREDENTIALS_FILE: join(dir, 'none') })).toBeNull();
  });
});
