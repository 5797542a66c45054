import { Option, type Command } from 'commander';
import { ROLES, type RevokeRequest, type RevokeResult, type RevocationsResult, type Revocation } from '@clinic-hub/protocol';
import { CliError } from '../cli-error.js';
import { connectionOptions, examples, handle, jsonOption, type Runtime } from '../command-kit.js';
import { resolveConnection } from '../connection.js';
import { hubRequest } from '../hub-http.js';
import type { IssuedToken } from '../hub-types.js';

/** The page a token of this role opens, if there is one. */
const PAGE_BY_ROLE: Partial<Record<string, string>> = { display: '/display', patient: '/ticket', staff: '/staff', doctor: '/staff', kiosk: '/kiosk' };

export function registerTokenCommands(program: Command, runtime: Runtime): void {
  const token = program.command('token').description('hub tokens');
  examples(token, ['clinic token issue --role display --clinic demo']);

  const issue = connectionOptions(token.command('issue'), { clinic: false })
    .description('issue a token (needs an admin token): prints the token alone on stdout, what it is on stderr')
    .addOption(new Option('--role <role>', 'role of the new token').choices(ROLES).makeOptionMandatory())
    .requiredOption('--clinic <id>', 'clinic the token is for ("*" for all clinics: admin and service only)')
    .option('--ttl <seconds>', 'lifetime in seconds (60 to 2592000; default: the hub’s for the role)')
    .option('--ticket <id>', 'ticket id (patient tokens only)')
    .option('--sub <subject>', 'who or what holds it, e.g. display:lobby-tv')
    .addOption(jsonOption());
  examples(issue, [
    'clinic token issue --role display --clinic demo --sub display:lobby-tv',
    'clinic token issue --role staff --clinic demo --ttl 28800 --json',
    'TOKEN=$(clinic token issue --role doctor --clinic demo)',
  ]);
  handle<{ role: string; clinic: string; ttl?: string; ticket?: string; sub?: string }>(issue, runtime, async ({ out, env, cwd }, options) => {
    const ttlSeconds = options.ttl === undefined ? undefined : Number(options.ttl);
    if (ttlSeconds !== undefined && (!Number.isInteger(ttlSeconds) || ttlSeconds < 60 || ttlSeconds > 30 * 86400)) {
      throw new CliError('USAGE', { message: '--ttl must be a whole number of seconds from 60 to 2592000 (30 days).' });
    }
    if (options.role === 'patient' && !options.ticket) throw new CliError('USAGE', { message: 'patient tokens need --ticket ID.' });
    const connection = resolveConnection({ ...(options.url ? { url: options.url } : {}), ...(options.token ? { token: options.token } : {}), ...(options.profile ? { profile: options.profile } : {}) }, env, cwd);
    const issued = await hubRequest<IssuedToken>(connection, '/api/tokens', {
      method: 'POST',
      body: {
        role: options.role,
        clinic: options.clinic,
        ...(options.sub ? { sub: options.sub } : {}),
        ...(options.ticket ? { ticket: options.ticket } : {}),
        ...(ttlSeconds === undefined ? {} : { ttlSeconds }),
      },
    });
    const page = PAGE_BY_ROLE[issued.role];
    const pageUrl = page && issued.clinic !== '*' ? `${connection.url}${page}#token=${issued.token}` : null;
    if (out.json) {
      out.data({ ...issued, pageUrl });
      return;
    }
    out.note(`${issued.role} token for clinic ${issued.clinic} (sub ${issued.sub}, id ${issued.id}), expires ${new Date(issued.expiresAt).toISOString()}`);
    if (pageUrl) out.note(`Page: ${pageUrl}`);
    out.line(issued.token);
  });

  const revoke = connectionOptions(token.command('revoke'), { clinic: false })
    .description('revoke tokens (needs an admin token): one token and its refreshes (--id or --revoke-token), a user (--user), or a whole clinic (--all); sockets using them are disconnected on every hub node within a second')
    .option('--id <id>', 'the token id printed when it was issued (clinic token issue, POST /api/tokens)')
    .option('--revoke-token <jwt>', 'the token itself (a leaked one): revokes its session')
    .option('--user <sub>', 'every token of this user (token sub) issued until now; needs --clinic')
    .option('--all', 'every token of the clinic issued until now; needs --clinic')
    .option('--clinic <id>', 'the clinic of --user or --all ("*" for all-clinics tokens)')
    .option('--reason <text>', 'why, kept with the revocation (at most 200 characters)')
    .addOption(jsonOption());
  examples(revoke, [
    'clinic token revoke --id 3q2nXo0dTlqY5N6Dq5mV1w --reason "left on the kiosk PC"',
    'clinic token revoke --user staff:sato --clinic demo',
    'clinic token revoke --all --clinic demo --json',
  ]);
  handle<{ id?: string; revokeToken?: string; user?: string; all?: boolean; clinic?: string; reason?: string }>(revoke, runtime, async ({ out, env, cwd }, options) => {
    const chosen = [options.id, options.revokeToken, options.user, options.all].filter((o) => o !== undefined);
    if (chosen.length !== 1) throw new CliError('USAGE', { message: 'give exactly one of --id, --revoke-token, --user or --all.' });
    if ((options.user !== undefined || options.all) && !options.clinic) throw new CliError('USAGE', { message: '--user and --all need --clinic ID ("*" for all-clinics tokens).' });
    const reason = options.reason ? { reason: options.reason } : {};
    const body: RevokeRequest = options.id
      ? { tokenId: options.id, ...reason }
      : options.revokeToken
        ? { token: options.revokeToken, ...reason }
        : options.user
          ? { clinic: options.clinic!, sub: options.user, ...reason }
          : { clinic: options.clinic!, all: true, ...reason };
    const connection = resolveConnection({ ...(options.url ? { url: options.url } : {}), ...(options.token ? { token: options.token } : {}), ...(options.profile ? { profile: options.profile } : {}) }, env, cwd);
    const { revocation } = await hubRequest<RevokeResult>(connection, '/api/tokens/revoke', { method: 'POST', body });
    if (out.json) {
      out.data({ revocation });
      return;
    }
    out.line(`revoked ${describeRevocation(revocation)}; sockets using them are disconnected on every hub node`);
  });

  const revocations = connectionOptions(token.command('revocations'), { clinic: false })
    .description('the revocations in force (admin): newest first')
    .addOption(jsonOption());
  examples(revocations, ['clinic token revocations', 'clinic token revocations --json']);
  handle(revocations, runtime, async ({ out, connection }) => {
    const list = await hubRequest<RevocationsResult>(connection(), '/api/tokens/revocations');
    if (out.json) {
      out.data(list);
      return;
    }
    if (list.revocations.length === 0) out.line('no revocations in force');
    for (const r of list.revocations) out.line(`${new Date(r.at).toISOString()}  ${describeRevocation(r)}  by ${r.by}${r.reason ? `  (${r.reason})` : ''}`);
  });
}

function describeRevocation(r: Revocation): string {
  return r.kind === 'token' ? `token ${r.id} and its refreshes` : r.kind === 'user' ? `every token of ${r.sub} in ${r.clinic} issued until now` : `every token of clinic ${r.clinic} issued until now`;
}
