import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { bucketNameProblem, normalizeRepositoryUrl, parsePolicy, PolicyError } from '../../src/policy/index.js';
import { parseS3Url } from '../../src/storage/open.js';
import { splitS3Url } from '../../src/storage/s3-url.js';

// One table for the one S3 URL reading that the policy (repository.url, --repo, sources'
// bucket) and openStore (restore --to, any opened URL) share. `bucket`/`prefix` is what an
// accepted URL names; `refused` is why it is not. The rows marked "was:" are those on which the
// policy and openStore disagreed before they shared src/storage/s3-url.ts.
const OK = (bucket: string, prefix = '') => ({ bucket, prefix });
const BAD = (reason: string) => ({ refused: reason });
type Row = [url: string, want: { bucket: string; prefix: string } | { refused: string }];
const URLS: Row[] = [
  // bucket alone, with prefixes, and the slashes around them
  ['s3://raw-events', OK('raw-events')],
  ['s3://raw-events/', OK('raw-events')],
  ['s3://raw-events///', OK('raw-events')],
  ['s3://raw-events/p', OK('raw-events', 'p')],
  ['s3://raw-events/p/', OK('raw-events', 'p')],
  ['s3://raw-events/p//', OK('raw-events', 'p')], // was: refused by openStore ("//")
  ['s3://raw-events/a/b/', OK('raw-events', 'a/b')],
  ['s3://raw-events/p?x', OK('raw-events', 'p?x')],
  ['s3://raw-events//', OK('raw-events')],
  ['s3://raw-events//p', BAD('empty path segment')], // was: openStore read prefix "p/"
  ['s3://raw-events/a//b', BAD('empty path segment')],
  // length
  ['s3://abc', OK('abc')],
  [`s3://${'a'.repeat(63)}`, OK('a'.repeat(63))],
  ['s3://ab', BAD('must be 3 to 63 characters long, not 2')],
  [`s3://${'a'.repeat(64)}`, BAD('must be 3 to 63 characters long, not 64')],
  ['s3://', BAD('must be 3 to 63 characters long, not 0')],
  ['s3:///p', BAD('must be 3 to 63 characters long, not 0')],
  // characters
  ['s3://my.bucket-1', OK('my.bucket-1')],
  ['s3://www.example.com/site', OK('www.example.com', 'site')],
  ['s3://Raw-Events', BAD('may contain only lowercase letters, digits, dots and hyphens, not "R"')], // was: accepted by openStore
  ['s3://RAW', BAD('may contain only lowercase letters, digits, dots and hyphens, not "R"')], // was: accepted by openStore
  ['s3://raw_events', BAD('may contain only lowercase letters, digits, dots and hyphens, not "_"')], // was: accepted by openStore
  ['s3://raw events', BAD('may contain only lowercase letters, digits, dots and hyphens, not " "')],
  ['s3://raw-events?x=1', BAD('may contain only lowercase letters, digits, dots and hyphens, not "?"')],
  // first and last character, dots
  ['s3://-raw', BAD('must start and end with a lowercase letter or digit')],
  ['s3://raw-', BAD('must start and end with a lowercase letter or digit')],
  ['s3://.raw', BAD('must start and end with a lowercase letter or digit')],
  ['s3://raw.', BAD('must start and end with a lowercase letter or digit')],
  ['s3://raw..events', BAD('must not contain two dots in a row')], // was: accepted by openStore
  ['s3://raw.-events', OK('raw.-events')],
  // IP-like
  ['s3://192.168.1.1', BAD('must not look like an IP address')], // was: accepted by openStore
  ['s3://999.999.999.999', BAD('must not look like an IP address')], // was: accepted by openStore
  ['s3://1.2.3', OK('1.2.3')],
  ['s3://192.168.1.1.x', OK('192.168.1.1.x')],
  // reserved prefixes and suffixes only restrict creating buckets: an access point alias is a valid argument
  ['s3://my-ap-abcdefghij1234567890-s3alias', OK('my-ap-abcdefghij1234567890-s3alias')],
  ['s3://xn--abc', OK('xn--abc')],
];

describe('one S3 URL reading for the policy and openStore', () => {
  it.each(URLS)('%s', (url, want) => {
    const split = splitS3Url(url);
    const policy = normalizeRepositoryUrl(url, '/');
    let opened: { bucket: string; prefix: string } | Error;
    try {
      opened = parseS3Url(url);
    } catch (err) {
      opened = err as Error;
    }
    if ('refused' in want) {
      expect('problem' in split).toBe(true);
      expect('error' in policy && policy.error).toContain(want.refused);
      expect(opened).toBeInstanceOf(UsageError);
      expect((opened as Error).message).toContain(want.refused);
      return;
    }
    expect(split).toEqual(want);
    expect(policy).toEqual({ url: want.prefix === '' ? `s3://${want.bucket}` : `s3://${want.bucket}/${want.prefix}`, kind: 's3' });
    expect(opened).toEqual({ bucket: want.bucket, prefix: want.prefix === '' ? '' : `${want.prefix}/` });
  });

  it('words the refusals as each layer did: the policy quotes the URL, openStore names it and hints at the rule', () => {
    expect(normalizeRepositoryUrl('s3://Backup_Bucket/x', '/')).toEqual({
      error: 'invalid bucket name "Backup_Bucket" in "s3://Backup_Bucket/x": may contain only lowercase letters, digits, dots and hyphens, not "B"',
    });
    expect(normalizeRepositoryUrl('s3://raw-events//p', '/')).toEqual({ error: '"s3://raw-events//p" has an empty path segment ("//")' });
    expect(() => parseS3Url('s3://Backup_Bucket/x')).toThrow(
      'invalid bucket name "Backup_Bucket" in s3://Backup_Bucket/x: may contain only lowercase letters, digits, dots and hyphens, not "B"',
    );
    expect(() => parseS3Url('s3://raw-events//p')).toThrow("invalid prefix in s3://raw-events//p: empty path segment ('//')");
    const refused = (() => {
      try {
        return parseS3Url('s3://ab');
      } catch (err) {
        return err;
      }
    })();
    expect(refused).toBeInstanceOf(UsageError);
    expect((refused as UsageError).hint).toBe('bucket names are 3 to 63 lowercase letters, digits, dots and hyphens');
  });

  it('applies the same bucket rule to a source bucket in the policy', () => {
    for (const [url, want] of URLS) {
      const bucket = url.slice('s3://'.length);
      if (bucket.includes('/')) continue;
      const problem = bucketNameProblem(bucket);
      if ('refused' in want) expect(problem, bucket).toBe(want.refused);
      else expect(problem, bucket).toBeUndefined();
    }
    const yaml = (bucket: string) => `version: 1\nrepository: { url: file:///tmp/r, encryption: none }\ngroups: [{ name: g, sources: [{ bucket: "${bucket}" }] }]\n`;
    expect(parsePolicy(yaml('raw.-events'), 'p.yaml').groups[0]!.sources[0]).toMatchObject({ kind: 's3', bucket: 'raw.-events' });
    expect(() => parsePolicy(yaml('192.168.1.1'), 'p.yaml')).toThrow(PolicyError);
  });
});
