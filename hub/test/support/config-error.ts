import { expect } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';

/** The message of the ConfigError `load` throws; the test fails when it throws anything else, or nothing. */
export function configErrorOf(load: () => unknown): string {
  try {
    load();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('expected a ConfigError');
}

/** The message of the ConfigError the hub's configuration gives for `env`. */
export function configError(env: Record<string, string | undefined>): string {
  return configErrorOf(() => loadConfig(env as NodeJS.ProcessEnv));
}
