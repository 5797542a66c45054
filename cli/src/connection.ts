import type { Role } from '@clinic-hub/protocol';
import { CliError } from './cli-error.js';
import { findLocalStack, isRunning, type LocalStack } from './local-stack.js';
import { configFile, readProfiles } from './profiles.js';

/** Options every command takes (commander's global options). */
export interface ConnectionOptions {
  url?: string;
  token?: string;
  profile?: string;
  clinic?: string;
}

/** What a token says about itself, read without verifying it (the hub verifies). */
export interface TokenInfo {
  sub: string;
  role: Role;
  clinic: string;
  ticket?: string;
  /** Milliseconds since the epoch. */
  expiresAt: number;
}

export interface Connection {
  url: string;
  token: string;
  /** The clinic this connection acts for; null for an all-clinics token when none was named. */
  clinic: string | null;
  tokenInfo: TokenInfo | null;
  source: 'flags' | 'env' | 'profile' | 'local';
  profile?: string;
  local?: LocalStack;
}

export function decodeToken(token: string): TokenInfo | null {
  const payload = token.split('.')[1];
  if (!payload) return null;
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
    if (typeof claims.role !== 'string' || typeof claims.clinic !== 'string') return null;
    return {
      sub: String(claims.sub ?? ''),
      role: claims.role as Role,
      clinic: claims.clinic,
      ...(typeof claims.ticket === 'string' ? { ticket: claims.ticket } : {}),
      expiresAt: typeof claims.exp === 'number' ? claims.exp * 1000 : 0,
    };
  } catch {
    return null;
  }
}

export const normalizeUrl = (url: string) => url.trim().replace(/\/+$/, '');

/**
 * Which hub and token a command uses, first match wins: --url/--token,
 * CLINIC_URL/CLINIC_TOKEN, --profile or the current profile, then the stack
 * started with `npm start` on this machine (var/local.json). An explicit
 * --profile beats the environment; --url alone points a profile's token at
 * another node of the same hub.
 */
export function resolveConnection(options: ConnectionOptions, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Connection {
  const explicitClinic = options.clinic ?? env.CLINIC_ID;
  const explicitUrl = options.url ?? env.CLINIC_URL;
  let base: Omit<Connection, 'clinic' | 'tokenInfo'> & { savedClinic?: string | undefined };

  if (options.token || (env.CLINIC_TOKEN && !options.profile)) {
    const source = options.token ? 'flags' : 'env';
    if (!explicitUrl) {
      throw new CliError('USAGE', {
        message: `A token was given ${source === 'flags' ? 'with --token' : 'in CLINIC_TOKEN'} but no hub URL.`,
        hint: 'add --url URL or set CLINIC_URL',
      });
    }
    base = { url: normalizeUrl(explicitUrl), token: (options.token ?? env.CLINIC_TOKEN)!, source };
  } else {
    const store = readProfiles(configFile(env));
    const name = options.profile ?? env.CLINIC_PROFILE ?? store.current ?? undefined;
    const profile = name ? store.profiles[name] : undefined;
    if (name && !profile && (options.profile || env.CLINIC_PROFILE)) {
      throw new CliError('PROFILE_NOT_FOUND', { detail: name });
    }
    if (profile && name) {
      base = { url: normalizeUrl(options.url ?? profile.url), token: profile.token, source: 'profile', profile: name, savedClinic: profile.clinic };
    } else {
      const local = findLocalStack(cwd, env);
      if (!local) throw new CliError('NOT_CONFIGURED');
      base = { url: normalizeUrl(options.url ?? local.url), token: local.adminToken, source: 'local', local, savedClinic: local.clinic || undefined };
    }
  }

  const info = decodeToken(base.token);
  let clinic: string | null = explicitClinic ?? base.savedClinic ?? null;
  if (info && info.clinic !== '*') {
    if (explicitClinic && explicitClinic !== info.clinic) {
      throw new CliError('AUTH_WRONG_CLINIC', { detail: `the token is for clinic ${info.clinic}, not ${explicitClinic}` });
    }
    clinic = info.clinic;
  }
  const { savedClinic: _saved, ...rest } = base;
  return { ...rest, clinic, tokenInfo: info };
}

export function requireClinic(connection: Connection): string {
  // The hub would refuse it too; saying so here beats asking which clinic.
  if (!connection.tokenInfo) throw new CliError('AUTH_INVALID', { detail: 'the token is not a readable hub token (JWT)' });
  if (!connection.clinic) throw new CliError('CLINIC_REQUIRED');
  return connection.clinic;
}

/** A better next step for a hub that cannot be reached, depending on where the URL came from. */
export function unreachableHint(connection: Connection): string {
  if (connection.source === 'local' && connection.local) {
    return isRunning(connection.local.pid)
      ? `the local stack (pid ${connection.local.pid}) runs but does not answer at ${connection.url}: check its output`
      : `the local stack is not running (${connection.local.file} is from pid ${connection.local.pid}): start it with \`npm start\``;
  }
  return `check the URL (${connection.url}) and that the hub runs: \`curl ${connection.url}/healthz\``;
}
