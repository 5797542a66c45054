/** A configuration value is missing or wrong; the message names the variable. Start-up stops. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}
