// The deployment files in deploy/ cannot meet a Kubernetes API server or AWS Batch here
// (shared/ENGINES-NOTES.md: kubectl needs a server even for a client dry run), so this test
// parses them and checks what a run set needs from them: an Indexed Job whose completions
// equal `--shards`, the run-set name from the Job's name, retries per index that stop on the
// exit codes a retry cannot fix, and every Secret, ConfigMap, ServiceAccount and path they
// name present where it is named. Each file is read as the tool reads it (YAML documents,
// JSON), and the policies they carry are checked by lakeguard's own policy parser.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { buildProgram } from '../../src/cli.js';
import { ExitCode } from '../../src/errors.js';
import { loadPolicy, parsePolicy } from '../../src/policy/index.js';

const deploy = fileURLToPath(new URL('../../deploy/', import.meta.url));
const k8sDir = path.join(deploy, 'kubernetes');
const batchDir = path.join(deploy, 'aws-batch');

/** Exit codes no retry can fix: bad usage or policy, a complete but suspect run, no repository, a wrong password. */
const FINAL_EXIT_CODES = [ExitCode.usage, ExitCode.suspect, ExitCode.repositoryMissing, ExitCode.wrongPassword].sort((a, b) => a - b);

type Obj = Record<string, any>;

/** Every document of every YAML file under deploy/kubernetes/, failing on any parse error or warning. */
function k8sObjects(): { file: string; obj: Obj }[] {
  const out: { file: string; obj: Obj }[] = [];
  for (const file of readdirSync(k8sDir).filter((f) => /\.ya?ml$/.test(f)).sort()) {
    for (const doc of parseAllDocuments(readFileSync(path.join(k8sDir, file), 'utf8'))) {
      expect([...doc.errors, ...doc.warnings].map((e) => `${file}: ${e.message}`)).toEqual([]);
      const obj = doc.toJS() as Obj | null;
      if (obj !== null) out.push({ file, obj });
    }
  }
  return out;
}

const objects = k8sObjects();
const named = (kind: string) => new Map(objects.filter((o) => o.obj.kind === kind).map((o) => [o.obj.metadata.name as string, o.obj]));
const configMaps = named('ConfigMap');
const secrets = named('Secret');
const serviceAccounts = named('ServiceAccount');

/** The Job specs: the Indexed Job's and the CronJob's job template. */
const jobSpecs: [string, Obj][] = [
  ...objects.filter((o) => o.obj.kind === 'Job').map((o): [string, Obj] => [`${o.file} (Job)`, o.obj.spec]),
  ...objects.filter((o) => o.obj.kind === 'CronJob').map((o): [string, Obj] => [`${o.file} (CronJob)`, o.obj.spec.jobTemplate.spec]),
];

/** The value of a flag in an argument list (`--shards 8`). */
function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i < 0 ? undefined : args[i + 1];
}

/** The volume mounted at the directory holding `file`, and the file's name inside it. */
function volumeOf(spec: Obj, container: Obj, file: string): { volume: Obj; key: string } {
  const mount = (container.volumeMounts as Obj[]).find((m) => path.dirname(file) === m.mountPath);
  expect(mount, `no volume mounted at ${path.dirname(file)}`).toBeDefined();
  const volume = (spec.volumes as Obj[]).find((v) => v.name === mount!.name);
  expect(volume, `no volume named ${mount!.name}`).toBeDefined();
  return { volume: volume!, key: path.basename(file) };
}

describe('deploy/kubernetes', () => {
  it('holds an Indexed Job, a CronJob, and the ConfigMap, Secret and ServiceAccount they use', () => {
    expect(objects.map((o) => o.obj.kind).sort()).toEqual(['ConfigMap', 'CronJob', 'Deployment', 'Job', 'Secret', 'Secret', 'ServiceAccount']);
    for (const { obj } of objects) expect(typeof obj.apiVersion).toBe('string');
  });

  it.each(jobSpecs)('%s: an Indexed Job whose completions equal --shards, retried per index', (_, spec) => {
    expect(spec.completionMode).toBe('Indexed');
    expect(Number.isInteger(spec.completions) && spec.completions >= 1).toBe(true);
    expect(Number.isInteger(spec.parallelism) && spec.parallelism >= 1 && spec.parallelism <= spec.completions).toBe(true);
    expect(Number.isInteger(spec.backoffLimitPerIndex) && spec.backoffLimitPerIndex >= 1).toBe(true);
    // podFailurePolicy (and retrying an index as a new pod) needs restartPolicy Never.
    const pod = spec.template.spec;
    expect(pod.restartPolicy).toBe('Never');

    const containers = pod.containers as Obj[];
    expect(containers).toHaveLength(1);
    const c = containers[0]!;
    const args = c.args as string[];
    expect(args[0]).toBe('backup');
    expect(flag(args, '--shards')).toBe(String(spec.completions));
    // The index comes from JOB_COMPLETION_INDEX (set by Kubernetes), the run set from the env.
    expect(args).not.toContain('--shard');
    expect(args).not.toContain('--run-set');
    const env = new Map((c.env as Obj[]).map((e) => [e.name as string, e]));
    expect(env.has('JOB_COMPLETION_INDEX')).toBe(false);
    expect(env.get('LAKEGUARD_RUN_SET')?.valueFrom).toEqual({ fieldRef: { fieldPath: "metadata.labels['batch.kubernetes.io/job-name']" } });

    // Only the exit codes a retry cannot fix fail the index at once; a drained node is ignored.
    const rules = spec.podFailurePolicy.rules as Obj[];
    const failIndex = rules.find((r) => r.action === 'FailIndex');
    expect(failIndex?.onExitCodes).toEqual({ containerName: c.name, operator: 'In', values: FINAL_EXIT_CODES });
    expect(rules.find((r) => r.action === 'Ignore')?.onPodConditions).toEqual([{ type: 'DisruptionTarget' }]);
  });

  it.each(jobSpecs)('%s: the policy, password, credentials and HOME it names exist', (_, spec) => {
    const pod = spec.template.spec;
    const c = (pod.containers as Obj[])[0]!;
    const env = new Map((c.env as Obj[]).map((e) => [e.name as string, e]));

    // The policy: a ConfigMap key, mounted where --policy points, valid for lakeguard.
    const policyFile = flag(c.args as string[], '--policy')!;
    const policy = volumeOf(pod, c, policyFile);
    const configMap = configMaps.get(policy.volume.configMap?.name);
    expect(configMap, `ConfigMap ${policy.volume.configMap?.name}`).toBeDefined();
    expect(() => parsePolicy(configMap!.data[policy.key], policy.key)).not.toThrow();

    // The password: a Secret key, mounted where LAKEGUARD_PASSWORD_FILE points.
    const passwordFile = env.get('LAKEGUARD_PASSWORD_FILE')!.value as string;
    const password = volumeOf(pod, c, passwordFile);
    const secret = secrets.get(password.volume.secret?.secretName);
    expect(secret, `Secret ${password.volume.secret?.secretName}`).toBeDefined();
    expect(Object.keys(secret!.stringData ?? secret!.data)).toContain(password.key);
    expect(env.has('LAKEGUARD_PASSWORD')).toBe(false);

    // Every Secret an env var names exists (none today: credentials come from IRSA).
    for (const e of env.values()) {
      const ref = e.valueFrom?.secretKeyRef;
      if (ref) expect(secrets.has(ref.name), `Secret ${ref.name}`).toBe(true);
    }
    // IRSA: the ServiceAccount exists and carries a role.
    const account = serviceAccounts.get(pod.serviceAccountName);
    expect(account?.metadata.annotations['eks.amazonaws.com/role-arn']).toMatch(/^arn:aws:iam::\d{12}:role\/.+/);

    // HOME (catalog cache, unpacked addons) is an empty, writable volume: a pod starts empty.
    const home = env.get('HOME')!.value as string;
    const homeMount = (c.volumeMounts as Obj[]).find((m) => m.mountPath === home);
    expect(homeMount?.readOnly).toBeFalsy();
    expect((pod.volumes as Obj[]).find((v) => v.name === homeMount!.name)?.emptyDir).toBeDefined();
    // SQLite's temporary files (sorts, selections: ~100 B per row) go to the HOME volume, not
    // to the small /tmp: SQLite falls back to /tmp when SQLITE_TMPDIR is unset.
    expect(env.get('SQLITE_TMPDIR')?.value).toBe(home);
  });

  it('names every manual Job afresh and keeps the CronJob pod template the same as the Job', () => {
    // A run-set name used before is a complete run set: its shards would copy nothing.
    const job = objects.find((o) => o.obj.kind === 'Job')!.obj;
    expect(job.metadata.name).toBeUndefined();
    expect(job.metadata.generateName).toMatch(/-$/);
    const cron = objects.find((o) => o.obj.kind === 'CronJob')!.obj;
    expect(cron.spec.concurrencyPolicy).toBe('Forbid');
    expect(cron.spec.jobTemplate.spec).toEqual(job.spec);
  });
});

describe('deploy/kubernetes/watch-deployment.yaml', () => {
  const deployment = objects.find((o) => o.obj.kind === 'Deployment')!.obj;
  const pod = deployment.spec.template.spec;
  const c = (pod.containers as Obj[])[0]!;
  const args = c.args as string[];

  it('one watch process, replaced (never two at once), with time to finish a run on SIGTERM', () => {
    expect(deployment.spec.replicas).toBe(1);
    expect(deployment.spec.strategy).toEqual({ type: 'Recreate' });
    expect(deployment.spec.selector.matchLabels).toEqual(deployment.spec.template.metadata.labels);
    expect(args[0]).toBe('watch');
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(60);
    expect(pod.securityContext.runAsNonRoot).toBe(true);
  });

  it('the policy, password and metrics token it names exist; the metrics port is the one it listens on', () => {
    const policy = volumeOf(pod, c, flag(args, '--policy')!);
    expect(() => parsePolicy(configMaps.get(policy.volume.configMap?.name)!.data[policy.key], policy.key)).not.toThrow();
    const env = new Map((c.env as Obj[]).map((e) => [e.name as string, e]));
    const password = volumeOf(pod, c, env.get('LAKEGUARD_PASSWORD_FILE')!.value as string);
    expect(Object.keys(secrets.get(password.volume.secret?.secretName)!.stringData)).toContain(password.key);
    const token = volumeOf(pod, c, flag(args, '--metrics-token-file')!);
    expect(Object.keys(secrets.get(token.volume.secret?.secretName)!.stringData)).toContain(token.key);
    const port = Number(flag(args, '--metrics-listen')!.split(':').at(-1));
    expect((c.ports as Obj[]).find((p) => p.name === 'metrics')?.containerPort).toBe(port);
    expect(serviceAccounts.has(pod.serviceAccountName)).toBe(true);
  });
});

describe('deploy/systemd', () => {
  const systemdDir = path.join(deploy, 'systemd');
  /** A unit file's settings (a key set twice keeps every value, in order). */
  const unit = (file: string): Map<string, string[]> => {
    const settings = new Map<string, string[]>();
    for (const line of readFileSync(path.join(systemdDir, file), 'utf8').split('\n')) {
      const m = /^([A-Za-z]+)=(.*)$/.exec(line);
      if (m !== null) settings.set(m[1]!, [...(settings.get(m[1]!) ?? []), m[2]!]);
    }
    return settings;
  };
  const program = buildProgram([]);
  const globalFlags = new Set(program.options.map((o) => o.long));
  /** The flags of an ExecStart line before and after its command, and the command. */
  const execStart = (settings: Map<string, string[]>) => {
    const argv = settings.get('ExecStart')![0]!.split(' ');
    expect(argv[0]).toBe('/usr/local/bin/lakeguard');
    const at = argv.findIndex((a, i) => i > 0 && !a.startsWith('-') && !argv[i - 1]!.startsWith('--'));
    return { global: argv.slice(1, at), command: argv[at]!, rest: argv.slice(at + 1) };
  };

  it('the timer starts the backup service, which uses only options the program has', () => {
    const timer = unit('lakeguard-backup.timer');
    expect(timer.get('Unit')).toEqual(['lakeguard-backup.service']);
    expect(timer.get('Persistent')).toEqual(['true']);
    const service = unit('lakeguard-backup.service');
    expect(service.get('Type')).toEqual(['oneshot']);
    const { global, command, rest } = execStart(service);
    expect(command).toBe('backup');
    for (const f of global.filter((a) => a.startsWith('--'))) expect(globalFlags.has(f), f).toBe(true);
    expect(rest).toEqual([]);
    // The textfile collector's directory is writable despite ProtectSystem=strict.
    expect(service.get('ReadWritePaths')).toEqual([path.dirname(global[global.indexOf('--metrics-file') + 1]!)]);
  });

  it.each(['lakeguard-backup.service', 'lakeguard-watch.service'])('%s: the password comes from a loaded credential', (file) => {
    const service = unit(file);
    const loaded = new Set((service.get('LoadCredential') ?? []).map((c) => c.split(':')[0]));
    const env = new Map((service.get('Environment') ?? []).map((e) => e.split('=') as [string, string]));
    expect(env.get('LAKEGUARD_PASSWORD_FILE')).toMatch(/^%d\//);
    // Every %d/<name> the unit uses is a credential it loads.
    for (const used of readFileSync(path.join(systemdDir, file), 'utf8').matchAll(/%d\/([\w-]+)/g)) expect(loaded.has(used[1]), used[1]).toBe(true);
  });

  it('watch: restarted on failure, SIGTERM with time to finish, exit 130 a clean stop', () => {
    const service = unit('lakeguard-watch.service');
    expect(execStart(service).command).toBe('watch');
    expect(service.get('KillSignal')).toEqual(['SIGTERM']);
    expect(service.get('SuccessExitStatus')).toEqual([String(ExitCode.interrupted)]);
    expect(service.get('Restart')).toEqual(['on-failure']);
  });
});

describe('deploy/aws-batch', () => {
  const definition = JSON.parse(readFileSync(path.join(batchDir, 'job-definition.json'), 'utf8')) as Obj;
  const submission = JSON.parse(readFileSync(path.join(batchDir, 'submit-job.json'), 'utf8')) as Obj;

  it('submits an array job whose size is the --shards of the definition command', () => {
    expect(submission.jobDefinition).toBe(definition.jobDefinitionName);
    const size = submission.arrayProperties.size as number;
    // AWS Batch array jobs have 2 to 10,000 children.
    expect(Number.isInteger(size) && size >= 2 && size <= 10_000).toBe(true);
    const command = definition.containerProperties.command as string[];
    expect(command[0]).toBe('backup');
    const shards = flag(command, '--shards')!;
    const param = /^Ref::(\w+)$/.exec(shards)?.[1];
    const value = param === undefined ? shards : (submission.parameters?.[param] ?? definition.parameters?.[param]);
    expect(value).toBe(String(size));
    // The index comes from AWS_BATCH_JOB_ARRAY_INDEX, the run set from AWS_BATCH_JOB_ID.
    expect(command).not.toContain('--shard');
    expect(command).not.toContain('--run-set');
  });

  it('retries a child except on the exit codes a retry cannot fix', () => {
    const { attempts, evaluateOnExit } = definition.retryStrategy as { attempts: number; evaluateOnExit: Obj[] };
    expect(attempts).toBeGreaterThan(1);
    // Batch retries when no condition matches; these end the child.
    expect(evaluateOnExit.every((r) => r.action === 'EXIT')).toBe(true);
    expect(evaluateOnExit.map((r) => Number(r.onExitCode))).toEqual(FINAL_EXIT_CODES);
  });

  it('runs the policy its image carries, with the password from Secrets Manager', () => {
    const command = definition.containerProperties.command as string[];
    const dockerfile = readFileSync(path.join(batchDir, 'Dockerfile'), 'utf8');
    const copy = /^COPY\s+(\S+)\s+(\S+)\s*$/m.exec(dockerfile)!;
    expect(copy[2]).toBe(flag(command, '--policy'));
    expect(() => loadPolicy(path.join(batchDir, copy[1]!))).not.toThrow();
    const secretsByName = new Map((definition.containerProperties.secrets as Obj[]).map((s) => [s.name, s.valueFrom]));
    expect(secretsByName.get('LAKEGUARD_PASSWORD')).toMatch(/^arn:aws:secretsmanager:/);
  });
});

describe('deploy/Dockerfile', () => {
  const dockerfile = readFileSync(path.join(deploy, 'Dockerfile'), 'utf8');

  it('builds the single-file executable with npm run build:binary and copies what it writes', () => {
    const pkg = JSON.parse(readFileSync(path.join(deploy, '..', 'package.json'), 'utf8')) as Obj;
    expect(pkg.scripts['build:binary']).toBeDefined();
    expect(dockerfile).toMatch(/^ *&& npm run build:binary \\$/m);
    // scripts/build-binary.mjs writes dist-bin/lakeguard.
    const builder = readFileSync(path.join(deploy, '..', 'scripts', 'build-binary.mjs'), 'utf8');
    expect(builder).toMatch(/join\(root, 'dist-bin'\)/);
    expect(builder).toMatch(/join\(out, 'lakeguard'\)/);
    expect(/^COPY --from=build (\S+) \S+$/m.exec(dockerfile)![1]).toBe('/src/dist-bin/lakeguard');
  });

  it('runs the single-file executable it copies, with the HOME the manifests mount', () => {
    const copied = /^COPY --from=build \S+ (\S+)$/m.exec(dockerfile)![1];
    expect(/^ENTRYPOINT \["([^"]+)"\]$/m.exec(dockerfile)![1]).toBe(copied);
    const home = /^ENV HOME=(\S+)$/m.exec(dockerfile)![1];
    const job = objects.find((o) => o.obj.kind === 'Job')!.obj;
    const env = (job.spec.template.spec.containers[0].env as Obj[]).find((e) => e.name === 'HOME');
    expect(env?.value).toBe(home);
    const definition = JSON.parse(readFileSync(path.join(batchDir, 'job-definition.json'), 'utf8')) as Obj;
    expect((definition.containerProperties.environment as Obj[]).find((e) => e.name === 'HOME')?.value).toBe(home);
  });
});
