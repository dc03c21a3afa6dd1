/**
 * Reading a policy: YAML text → validated, fully defaulted, deep-frozen `Policy`.
 *
 * The work is split by job: yaml-check.ts walks any YAML document and words type and key
 * problems, schema.ts and schema-groups.ts say what a lakeguard policy contains, values.ts
 * parses single values. Every problem is collected before failing and names file:line:column,
 * the key (via the path), the bad value and what is allowed, except for anything that may be a
 * secret, whose value is never repeated.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { errorMessage, UsageError } from '../errors.js';
import { checkPolicy, POLICY_YAML } from './schema.js';
import { INLINE_POLICY_FILE, POLICY_DEFAULTS, type Policy, type Problem } from './types.js';
import { normalizeRepositoryUrl } from './values.js';
import { parseYaml } from './yaml-check.js';

// Importers of load.ts (commands, tests) keep finding these here.
export { normalizeRepositoryUrl, parseSize } from './values.js';

/** An invalid policy: every problem found, sorted by position. Exit code 2 (usage). */
export class PolicyError extends UsageError {
  readonly problems: Problem[];

  constructor(file: string, problems: readonly Problem[]) {
    // Stable sort: problems on the same spot keep the order the checks found them in.
    const sorted = [...problems].sort((a, b) => a.line - b.line || a.column - b.column);
    const count = `${sorted.length} ${sorted.length === 1 ? 'problem' : 'problems'}`;
    const lines = sorted.map((p) => `  ${p.file}:${p.line}:${p.column} ${p.path === '' ? '' : `${p.path}: `}${p.message}`);
    super([`invalid policy ${file}: ${count}`, ...lines].join('\n'));
    this.problems = sorted;
  }
}

/** Reads and validates a policy file. A missing or unreadable file is a UsageError naming it. */
export function loadPolicy(file: string): Policy {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason =
      code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : code === 'EACCES' ? 'permission denied' : errorMessage(err);
    throw new UsageError(`cannot read policy file ${file}: ${reason}`, {
      hint: 'pass the policy with --policy PATH (examples in examples/policies/)',
      cause: err,
    });
  }
  return parsePolicy(text, file);
}

/**
 * Validates policy text. `file` is shown in problems as given and, resolved, becomes
 * `Policy.file`; relative paths in the policy are resolved against its directory (against the
 * working directory for '<inline>').
 */
export function parsePolicy(text: string, file: string): Policy {
  const inline = file === INLINE_POLICY_FILE;
  const absolute = inline ? INLINE_POLICY_FILE : path.resolve(file);
  const baseDir = inline ? process.cwd() : path.dirname(absolute);

  const { checker: c, parsed, contents } = parseYaml(text, file, POLICY_YAML);
  if (!parsed) throw new PolicyError(file, c.problems);
  const policy = checkPolicy(c, contents, { file: absolute, baseDir, catalogNames: new Map() });
  if (c.problems.length > 0 || policy === undefined) throw new PolicyError(file, c.problems);
  return deepFreeze(policy);
}

/** A policy with no groups, for commands that only need a repository (`init --repo URL`). */
export function defaultPolicyForRepository(url: string): Policy {
  const parsed = normalizeRepositoryUrl(url, process.cwd());
  if ('error' in parsed) throw new UsageError(`invalid repository URL: ${parsed.error}`);
  return deepFreeze({
    version: 1,
    file: INLINE_POLICY_FILE,
    repository: { url: parsed.url, encryption: POLICY_DEFAULTS.encryption, passwordEnv: POLICY_DEFAULTS.passwordEnv },
    s3: {},
    groups: [],
    concurrency: { ...POLICY_DEFAULTS.concurrency },
    timezone: 'UTC',
  });
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
