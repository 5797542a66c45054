import { readFileSync } from 'node:fs';
import { ConfigError } from './config-error.js';

/**
 * Secrets come from the environment or from files, never from the repository
 * or an image. `NAME_FILE=/run/secrets/name` (Docker and Kubernetes secrets)
 * sets NAME to the file's content, without its surrounding whitespace (the
 * trailing newline `echo` and editors leave). Setting both NAME and NAME_FILE
 * is a mistake, not a precedence rule, and stops the start.
 *
 * Returns a copy of `env` with each NAME filled in and its NAME_FILE removed,
 * so that reading the result again (the hub's config reads the notify config)
 * changes nothing.
 */
export function withSecretFiles(env: NodeJS.ProcessEnv, names: readonly string[], what = 'configuration'): NodeJS.ProcessEnv {
  const resolved: NodeJS.ProcessEnv = { ...env };
  const problems: string[] = [];
  for (const name of names) {
    const fileVariable = secretFileVariable(name);
    const path = env[fileVariable]?.trim();
    if (path === undefined || path === '') continue;
    delete resolved[fileVariable];
    if (env[name] !== undefined && env[name] !== '') {
      problems.push(`  ${fileVariable}: set ${name} or ${fileVariable}, not both`);
      continue;
    }
    let value: string;
    try {
      value = readFileSync(path, 'utf8').trim();
    } catch (error) {
      problems.push(`  ${fileVariable}: cannot read "${path}" (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
      continue;
    }
    if (value === '') {
      problems.push(`  ${fileVariable}: "${path}" is empty`);
      continue;
    }
    resolved[name] = value;
  }
  if (problems.length > 0) throw new ConfigError(`Invalid ${what}:\n${problems.join('\n')}`);
  return resolved;
}

export const secretFileVariable = (name: string) => `${name}_FILE`;
