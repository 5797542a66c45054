import type { Command } from 'commander';
import { CliError } from '../cli-error.js';
import { connectionOptions, examples, handle, jsonOption, type Runtime } from '../command-kit.js';
import { decodeToken, normalizeUrl, type Connection } from '../connection.js';
import { hubRequest, type Health } from '../hub-http.js';
import type { OpsStatus } from '@clinic-hub/protocol';
import { table } from '../output.js';
import { DEFAULT_PROFILE, configFile, readProfiles, writeProfiles } from '../profiles.js';

/**
 * Checks a URL and token against the hub: /healthz answers, and an
 * authenticated call succeeds. Returns the clinic the profile should act for.
 */
async function verify(url: string, token: string, clinic: string | undefined): Promise<{ health: Health; clinic: string | null }> {
  const health = await hubRequest<Health>({ url, token }, '/healthz', { auth: false });
  if (!health.node) throw new CliError('HUB_UNREACHABLE', { message: `${url}/healthz did not answer like a Clinic Hub.` });
  const info = decodeToken(token);
  if (info && info.role !== 'admin' && info.role !== 'staff' && info.role !== 'doctor' && info.role !== 'service') {
    throw new CliError('AUTH_FORBIDDEN', {
      message: `A ${info.role} token cannot run the operations CLI.`,
      hint: 'use an admin, staff, doctor or service token (`clinic token issue --role staff --clinic ID`)',
    });
  }
  if (info?.clinic && info.clinic !== '*' && clinic && clinic !== info.clinic) {
    throw new CliError('AUTH_WRONG_CLINIC', { detail: `the token is for clinic ${info.clinic}, not ${clinic}` });
  }
  if (info?.role === 'doctor') {
    await hubRequest({ url, token }, `/api/clinics/${encodeURIComponent(info.clinic)}/queue`);
    return { health, clinic: info.clinic };
  }
  const status = await hubRequest<OpsStatus>({ url, token }, '/api/ops/status');
  const visible = status.clinics.map((c) => c.id);
  if (clinic && !visible.includes(clinic)) throw new CliError('CLINIC_NOT_FOUND', { detail: `${clinic} (this hub has: ${visible.join(', ') || 'none'})` });
  const chosen = clinic ?? (info?.clinic && info.clinic !== '*' ? info.clinic : visible.length === 1 ? visible[0]! : null);
  return { health, clinic: chosen };
}

export function registerLoginCommands(program: Command, runtime: Runtime): void {
  const login = program
    .command('login')
    .summary('check a hub URL and token and save them as a profile')
    .description('check a hub URL and token, and save them as a profile (made current)')
    .requiredOption('--url <url>', 'hub URL, e.g. https://hub.example.jp')
    .requiredOption('--token <token>', 'an admin, staff, doctor or service token')
    .option('--profile <name>', 'profile name', DEFAULT_PROFILE)
    .option('--clinic <id>', 'clinic to act for (needed for all-clinics admin tokens when the hub has several)')
    .addOption(jsonOption());
  examples(login, [
    'clinic login --url https://hub.example.jp --token "$TOKEN"',
    'clinic login --url http://localhost:8080 --token "$ADMIN" --clinic demo --profile local-admin',
  ]);
  handle<{ url: string; token: string; profile: string; clinic?: string }>(login, runtime, async ({ out, env }, options) => {
    const url = normalizeUrl(options.url);
    const { health, clinic } = await verify(url, options.token, options.clinic);
    const file = configFile(env);
    const store = readProfiles(file);
    store.profiles[options.profile] = { url, token: options.token, ...(clinic ? { clinic } : {}), savedAt: Date.now() };
    store.current = options.profile;
    writeProfiles(file, store);
    const info = decodeToken(options.token);
    if (out.json) {
      out.data({ profile: options.profile, url, clinic, role: info?.role ?? null, expiresAt: info?.expiresAt ?? null, node: health.node, redis: health.redis, file });
      return;
    }
    out.line(`Logged in to ${url} (node ${health.node}, Redis ${health.redis}) as ${info?.role ?? 'unknown role'}${clinic ? ` for clinic ${clinic}` : ''}.`);
    out.line(`Saved profile "${options.profile}" in ${file} (current).`);
    if (!clinic && info?.clinic === '*') out.line('This token acts for every clinic: pass --clinic ID to queue commands, or log in again with --clinic.');
    if (health.redis !== 'up') out.line(out.style.yellow('Warning: the hub reports Redis down; queue commands will fail until it is back.'));
  });

  const logout = program
    .command('logout')
    .description('forget a saved profile (the current one by default)')
    .option('--profile <name>', 'profile to forget')
    .addOption(jsonOption());
  examples(logout, ['clinic logout', 'clinic logout --profile staging']);
  handle<{ profile?: string }>(logout, runtime, async ({ out, env }, options) => {
    const file = configFile(env);
    const store = readProfiles(file);
    const name = options.profile ?? store.current;
    if (!name || !store.profiles[name]) throw new CliError('PROFILE_NOT_FOUND', { detail: name ?? '(no current profile)' });
    delete store.profiles[name];
    if (store.current === name) store.current = null;
    writeProfiles(file, store);
    if (out.json) out.data({ removed: name, current: store.current });
    else out.line(`Removed profile "${name}".${store.current ? '' : ' No profile is current now.'}`);
  });

  const profiles = program.command('profiles').description('list saved profiles, or switch the current one');
  examples(profiles, ['clinic profiles', 'clinic profiles --json', 'clinic profiles use staging']);
  const list = profiles.command('list', { isDefault: true }).description('list saved profiles (tokens are never printed)').addOption(jsonOption());
  examples(list, ['clinic profiles list --json']);
  handle(list, runtime, async ({ out, env }) => {
    const file = configFile(env);
    const store = readProfiles(file);
    const rows = Object.entries(store.profiles).map(([name, p]) => {
      const info = decodeToken(p.token);
      return { name, current: name === store.current, url: p.url, clinic: p.clinic ?? null, role: info?.role ?? null, tokenClinic: info?.clinic ?? null, expiresAt: info?.expiresAt ?? null };
    });
    if (out.json) {
      out.data({ file, current: store.current, profiles: rows });
      return;
    }
    if (rows.length === 0) {
      out.line(`No saved profiles (${file}). Add one with \`clinic login --url URL --token TOKEN\`.`);
      return;
    }
    const now = Date.now();
    for (const line of table(
      ['', 'PROFILE', 'URL', 'CLINIC', 'ROLE', 'TOKEN EXPIRES'],
      rows.map((r) => [
        r.current ? '*' : '',
        r.name,
        r.url,
        r.clinic ?? (r.tokenClinic === '*' ? '(all)' : '-'),
        r.role ?? '?',
        r.expiresAt ? (r.expiresAt < now ? out.style.red('expired') : new Date(r.expiresAt).toISOString().replace('.000', '')) : '?',
      ]),
      { headerStyle: out.style.dim },
    ))
      out.line(line);
  });

  const use = profiles.command('use').argument('<name>', 'profile name').description('make a saved profile the current one').addOption(jsonOption());
  examples(use, ['clinic profiles use staging']);
  handle(use, runtime, async ({ out, env }, _options, [name]) => {
    const file = configFile(env);
    const store = readProfiles(file);
    if (!store.profiles[name!]) throw new CliError('PROFILE_NOT_FOUND', { detail: name });
    store.current = name!;
    writeProfiles(file, store);
    if (out.json) out.data({ current: name });
    else out.line(`Current profile: ${name} (${store.profiles[name!]!.url}).`);
  });

  const whoami = connectionOptions(program.command('whoami'))
    .summary('which hub, token and clinic commands use')
    .description('show which hub, token and clinic commands would use, and where they came from')
    .addOption(jsonOption());
  examples(whoami, ['clinic whoami', 'CLINIC_PROFILE=staging clinic whoami --json']);
  handle(whoami, runtime, async ({ out, connection }) => {
    const c: Connection = connection();
    const info = c.tokenInfo;
    const summary = {
      url: c.url,
      source: c.source,
      profile: c.profile ?? null,
      localFile: c.local?.file ?? null,
      clinic: c.clinic,
      role: info?.role ?? null,
      sub: info?.sub ?? null,
      tokenClinic: info?.clinic ?? null,
      expiresAt: info?.expiresAt ?? null,
    };
    if (out.json) {
      out.data(summary);
      return;
    }
    const from = c.source === 'profile' ? `profile "${c.profile}"` : c.source === 'local' ? `the local stack (${c.local?.file})` : c.source === 'env' ? 'CLINIC_URL/CLINIC_TOKEN' : '--url/--token';
    out.line(`hub:     ${c.url}  (from ${from})`);
    out.line(`token:   ${info ? `${info.role} ${info.sub}, clinic ${info.clinic}` : 'not a readable hub token'}`);
    if (info?.expiresAt) out.line(`expires: ${new Date(info.expiresAt).toISOString()}${info.expiresAt < Date.now() ? out.style.red(' (expired)') : ''}`);
    out.line(`clinic:  ${c.clinic ?? '(none chosen: pass --clinic)'}`);
  });
}
