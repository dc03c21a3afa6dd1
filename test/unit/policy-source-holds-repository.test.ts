// A source that holds the repository (or lies inside it) would copy the repository's own
// objects into it at every backup, each run larger than the last: the policy is refused (exit 2)
// with the source's line and the way out, unless the source's prefixes or excludes leave it out.
import { describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/errors.js';
import { parsePolicy, PolicyError } from '../../src/policy/index.js';

function problems(text: string): string[] {
  try {
    parsePolicy(text, 'p.yaml');
  } catch (err) {
    if (err instanceof PolicyError) {
      expect(err.exitCode).toBe(ExitCode.usage);
      return err.message.split('\n').slice(1).map((l) => l.trim());
    }
    throw err;
  }
  return [];
}

const s3 = (repo: string, source: string, endpoint = '') => `version: 1
repository: { url: "${repo}"${endpoint === '' ? '' : `, endpoint: "${endpoint}"`} }
groups:
  - name: g
    sources: [ ${source} ]
`;

describe('a source that holds the repository', () => {
  it('a directory source holding a file:// repository, or inside it, is refused naming both; excluded or elsewhere is fine', () => {
    expect(problems(s3('file:///data/lake/.backups', '{ path: /data/lake }'))).toEqual([
      'p.yaml:5:24 groups[0].sources[0].path: path "/data/lake" holds the repository file:///data/lake/.backups: every backup would copy the repository\'s own objects; exclude it (exclude: [".backups/**"]), or move the repository out of the source',
    ]);
    expect(problems(s3('file:///data/repo', '{ path: /data/repo/packs }'))[0]).toMatch(/path "\/data\/repo\/packs" lies inside the repository file:\/\/\/data\/repo: .*back up the data, not the repository$/);
    expect(problems(s3('file:///data/lake', '{ path: /data/lake }'))[0]).toMatch(/lies inside the repository/);
    expect(problems(s3('file:///data/lake/.backups', '{ path: /data/lake, exclude: [".backups/**"] }'))).toEqual([]);
    expect(problems(s3('file:///data/lake/.backups', '{ path: /data/lake, prefixes: [tables/] }'))).toEqual([]);
    expect(problems(s3('file:///data/backups', '{ path: /data/lake }'))).toEqual([]);
  });

  it('a bucket source holding an s3:// repository on the same endpoint is refused; another prefix or server is fine', () => {
    expect(problems(s3('s3://backups/lg', '{ bucket: backups }'))).toEqual([
      'p.yaml:5:26 groups[0].sources[0].bucket: bucket "backups" holds the repository s3://backups/lg: every backup would copy the repository\'s own objects; exclude it (exclude: ["lg/**"]), or move the repository out of the source',
    ]);
    expect(problems(s3('s3://backups', '{ bucket: backups }'))[0]).toMatch(/holds the repository s3:\/\/backups: .*give the repository a bucket of its own$/);
    expect(problems(s3('s3://backups/lg', '{ bucket: backups, prefixes: [lg/packs/] }'))[0]).toMatch(/lies inside the repository/);
    expect(problems(s3('s3://backups/lg', '{ bucket: backups, prefixes: [data/] }'))).toEqual([]);
    expect(problems(s3('s3://backups/lg', '{ bucket: backups, exclude: ["lg/**"] }'))).toEqual([]);
    expect(problems(s3('s3://backups/lg', '{ bucket: lake }'))).toEqual([]);
    expect(problems(s3('s3://backups/lg', '{ bucket: backups, endpoint: "http://10.0.0.2:9000" }', 'http://10.0.0.1:9000'))).toEqual([]);
    expect(problems(s3('s3://backups/lg', '{ bucket: backups, endpoint: "http://10.0.0.1:9000/" }', 'http://10.0.0.1:9000'))[0]).toMatch(/holds the repository/);
  });
});
