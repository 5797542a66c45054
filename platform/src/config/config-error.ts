/** A configuration value is missing or wrong; the message names the variable. Start-up stops. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/**
 * One line per bad variable of a configuration schema's issues: its name,
 * what is wrong, and the value given, unless it is a secret or unset.
 */
export function describeEnvIssues(
  issues: readonly { path: readonly PropertyKey[]; message: string }[],
  env: NodeJS.ProcessEnv,
  secrets: Iterable<string>,
): string[] {
  const hidden = new Set(secrets);
  return issues.map((issue) => {
    const variable = issue.path.map(String).join('.');
    const shown = hidden.has(variable) || env[variable] === undefined ? '' : ` (got "${env[variable]}")`;
    return `  ${variable}: ${issue.message}${shown}`;
  });
}
