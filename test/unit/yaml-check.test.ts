import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { parseYaml, read, type Checker, type Field, type YamlCheckOptions } from '../../src/policy/yaml-check.js';

// The checker knows nothing of lakeguard policies: a made-up schema (a list of servers with a
// name and a port) exercises it the way schema.ts does.
const OPTIONS: YamlCheckOptions = { documentName: 'config', keyAliases: { hostname: 'name' }, keyHomes: new Map([['port', 'servers[]']]) };

function checkConfig(text: string): { servers?: { name: string; port?: number }[]; problems: string[] } {
  const { checker: c, parsed, contents } = parseYaml(text, 'c.yaml', OPTIONS);
  const problems = () => c.problems.map((p) => `${p.line}:${p.column} ${p.path}: ${p.message}`);
  if (!parsed) return { problems: problems() };
  const root = c.field(contents, '', 0);
  const m = root && c.map(root, ['servers'], 'a map with servers');
  const list = m && read(m, 'servers', (f) => c.list(f, 'a list of servers'));
  const servers = list?.map((f) => server(c, f)).filter((s) => s !== undefined);
  return { servers, problems: problems() };
}

function server(c: Checker, f: Field): { name: string; port?: number } | undefined {
  const m = c.map(f, ['name', 'port'], 'a map with name and port');
  if (m === undefined) return undefined;
  const name = read(m, 'name', (x) => c.string(x, 'a server name'));
  if (name === undefined) {
    if (!m.has('name')) c.missing(f, 'name', 'name: web');
    return undefined;
  }
  const port = read(m, 'port', (x) => c.integer(x, 1, 65535));
  return port === undefined ? { name } : { name, port };
}

describe('the generic YAML checker', () => {
  it('hands out the values of a valid document', () => {
    expect(checkConfig('servers:\n  - { name: web, port: 80 }\n  - name: db\n')).toEqual({
      servers: [{ name: 'web', port: 80 }, { name: 'db' }],
      problems: [],
    });
  });

  it('reports wrong types, unknown, misplaced, misspelt, duplicate and missing keys with their path and position', () => {
    const text = ['servers:', '  - name: web', '    port: http', '    nam: x', '  - hostname: db', '  - { name: a, name: b }', '  - port: 1', 'port: 2', ''].join('\n');
    // In the order found: a schema sorts them for display (PolicyError does).
    expect(checkConfig(text).problems).toEqual([
      '8:1 port: "port" does not belong here; it goes under servers[] (allowed here: servers)',
      '4:5 servers[0].nam: unknown key "nam"; did you mean "name"?',
      '3:11 servers[0].port: expected an integer from 1 to 65535, got "http"',
      '5:5 servers[1].hostname: unknown key "hostname"; did you mean "name"?',
      '5:5 servers[1].name: required, e.g. name: web',
      '6:16 servers[2].name: duplicate key "name" (first set on line 6); keep one',
      '7:5 servers[3].name: required, e.g. name: web',
    ]);
  });

  it('follows aliases, and names the document in syntax problems and alias bombs', () => {
    expect(checkConfig('common: &c { name: web }\nservers: [*c]\n').problems).toEqual(['1:1 common: unknown key "common"; allowed here: servers']);
    expect(checkConfig('servers: []\n---\nservers: []\n').problems).toEqual(['2:1 : invalid YAML: the config must be a single YAML document (remove the second "---")']);
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]', ...'bcdefgh'.split('').map((n, i) => `${n}: &${n} [${Array(10).fill(`*${'abcdefgh'[i]}`).join(', ')}]`), ''].join('\n');
    expect(() => parseYaml(bomb, 'c.yaml', OPTIONS)).toThrow(UsageError);
    expect(() => parseYaml(bomb, 'c.yaml', OPTIONS)).toThrow(/^invalid config c\.yaml:\d+:\d+: the alias \*\w makes the aliases expand to more than 10000 values/);
  });
});
