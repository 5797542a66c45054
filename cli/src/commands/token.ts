import { Option, type Command } from 'commander';
import { ROLES } from '@clinic-hub/protocol';
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
    out.note(`${issued.role} token for clinic ${issued.clinic} (sub ${issued.sub}), expires ${new Date(issued.expiresAt).toISOString()}`);
    if (pageUrl) out.note(`Page: ${pageUrl}`);
    out.line(issued.token);
  });
}
