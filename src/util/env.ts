/**
 * A LAKEGUARD_* environment variable, undefined when unset or set but empty. Empty counts as
 * unset (an `env:` entry with no value in a Kubernetes manifest, `LAKEGUARD_REPOSITORY= lakeguard
 * …`): taken as it is, an empty path or URL is the current directory, where `init` made a
 * repository and every other command looked for one instead of the policy's.
 */
export function envSetting(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const value = env[name];
  return value === undefined || value === '' ? undefined : value;
}
