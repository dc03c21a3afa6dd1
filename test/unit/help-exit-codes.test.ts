// Every command's "Exit status" list in its --help comes from the one exit-code table in
// src/cli.ts: the help names exactly the codes the table gives that command, and the program's
// help names every code there is.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram, commandModules, commandOf, EXIT_CODE_TABLE, exitCodesOf, VALUE_OPTIONS } from '../../src/cli.js';
import { ExitCode } from '../../src/errors.js';

/** The help a user sees for `cmd --help` (commander's text and every addHelpText). */
function helpOf(cmd: Command): string {
  let text = '';
  cmd.configureOutput({ writeOut: (s) => (text += s), writeErr: (s) => (text += s) });
  cmd.outputHelp();
  return text;
}

/** The codes listed under `heading` ("Exit status:" or "Exit codes:"), one per line until a blank line. */
function listedCodes(help: string, heading: string): number[] {
  const lines = help.split('\n');
  const at = lines.indexOf(heading);
  expect(at, `no "${heading}" in:\n${help}`).toBeGreaterThanOrEqual(0);
  expect(lines.indexOf(heading, at + 1), `"${heading}" twice`).toBe(-1);
  const codes: number[] = [];
  for (const line of lines.slice(at + 1)) {
    if (line.trim() === '') break;
    const m = /^ {2}(\d+) +\S/.exec(line);
    if (m !== null) codes.push(Number(m[1]));
    else expect(line, 'a continuation line').toMatch(/^ {7}\S/);
  }
  return codes;
}

/** Every command that runs something (not only groups such as `catalog`), by its path. */
function commandsWithAction(parent: Command, prefix = ''): [string, Command][] {
  return parent.commands.flatMap((cmd) => {
    const path = prefix + cmd.name();
    const runs = (cmd as unknown as { _actionHandler: unknown })._actionHandler != null;
    return [...(runs ? [[path, cmd] as [string, Command]] : []), ...commandsWithAction(cmd, `${path} `)];
  });
}

const modules = await commandModules();

describe('exit codes in --help', () => {
  const program = buildProgram(modules);
  const commands = commandsWithAction(program);

  it('finds every command', () => {
    expect(commands.map(([path]) => path)).toEqual(expect.arrayContaining(['init', 'backup', 'restore', 'verify', 'catalog rebuild', 'lock extend', 'runs show', 'runs ack', 'rollback', 'policy show', 'key list', 'key passwd', 'copy', 'drill', 'watch']));
    expect(commands).toHaveLength(31);
  });

  it.each(commandsWithAction(buildProgram(modules)).map(([path]) => path))('lakeguard %s --help lists exactly its codes from the table', (path) => {
    const cmd = commands.find(([p]) => p === path)![1];
    const help = helpOf(cmd);
    const fromTable = exitCodesOf(path as Parameters<typeof exitCodesOf>[0]);
    expect(fromTable.length).toBeGreaterThan(0);
    expect(listedCodes(help, 'Exit status:')).toEqual(fromTable.map((row) => row.code));
    // The table's rows that give this command a code, and only those.
    const rows = EXIT_CODE_TABLE.filter((row) => row.commands === 'every' || path in row.commands).map((row) => row.code);
    expect(fromTable.map((row) => row.code)).toEqual(rows);
    for (const { text } of fromTable) expect(help.replace(/\n {7}/g, ' ')).toContain(text);
  });

  it('every command can succeed, fail, and refuse bad usage; only backup, restore and rollback end partial', () => {
    for (const [path] of commands) {
      const codes = exitCodesOf(path as Parameters<typeof exitCodesOf>[0]).map((row) => row.code);
      expect(codes, path).toEqual(expect.arrayContaining([ExitCode.ok, ExitCode.error, ExitCode.usage]));
      expect(codes.includes(ExitCode.partial), path).toBe(path === 'backup' || path === 'restore' || path === 'rollback');
    }
  });

  it('the program help lists every exit code once, in the order of the table', () => {
    expect(listedCodes(helpOf(program), 'Exit codes:')).toEqual(Object.values(ExitCode));
    expect(EXIT_CODE_TABLE.map((row) => row.code)).toEqual(Object.values(ExitCode));
  });
});

describe('a command loads only its own module', () => {
  it('finds the command word after the program options, skipping their values', () => {
    const argv = (...words: string[]) => ['node', 'lakeguard', ...words];
    expect(commandOf(argv('--policy', 'backup', '--json', 'restore', '--key', 'k'))).toBe('restore');
    expect(commandOf(argv('--timeout=5', '-q', 'runs', 'show', 'x'))).toBe('runs');
    expect(commandOf(argv('--help'))).toBeUndefined();
    expect(commandOf(argv('--', 'backup'))).toBeUndefined();
  });

  it('knows every program option that takes a value', () => {
    const valued = buildProgram(modules).options.filter((o) => o.required || o.optional).map((o) => o.long);
    expect([...VALUE_OPTIONS].sort()).toEqual(valued.sort());
  });

  it('registers the named command only, and every command otherwise', async () => {
    expect((await commandModules(['node', 'lakeguard', '--json', 'backup'])).length).toBe(1);
    expect(buildProgram(await commandModules(['node', 'lakeguard', 'backup'])).commands.map((c) => c.name())).toEqual(['backup']);
    expect(buildProgram(await commandModules(['node', 'lakeguard', 'help', 'backup'])).commands.map((c) => c.name())).toContain('serve');
  });
});

describe('the exit codes and options the user manual names', () => {
  const doc = (path: string): string => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

  it("the README's exit code table has every code, once, in order", () => {
    const readme = doc('README.md');
    const table = readme.slice(readme.indexOf('### Exit codes'), readme.indexOf('What to do about each'));
    const codes = [...table.matchAll(/^\| (\d+) \|/gm)].map((m) => Number(m[1]));
    expect(codes).toEqual(Object.values(ExitCode));
  });

  it('docs/troubleshooting.md says what to do about every code but 0', () => {
    const page = doc('docs/troubleshooting.md');
    const byCode = page.slice(page.indexOf('## By exit code'), page.indexOf('\n## ', page.indexOf('## By exit code') + 1));
    const codes = [...byCode.matchAll(/^- \*\*(\d+),/gm)].map((m) => Number(m[1]));
    expect(codes).toEqual(Object.values(ExitCode).filter((code) => code !== ExitCode.ok));
  });

  it('the README names every program option', () => {
    const readme = doc('README.md');
    const options = buildProgram(modules).options.map((o) => o.long!).filter((long) => long !== '--version' && long !== '--help');
    expect(options.filter((long) => !readme.includes(`\`${long}`))).toEqual([]);
  });
});
