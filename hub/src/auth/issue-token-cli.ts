/**
 * Issues a hub token from the command line, with the same secret the hub uses
 * (HUB_TOKEN_SECRET or HUB_TOKEN_SECRET_FILE, as in a hub container; or
 * var/token-secret written by `npm start`).
 *
 *   npm run token -- --role display --clinic demo
 *   npm run token -- --role admin --clinic '*' --ttl 3600 --json
 *
 * Over the network, admins use POST /api/tokens instead (see docs/protocol.md).
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ROLES, Role } from '@clinic-hub/protocol';
import { ConfigError, withSecretFiles } from '@clinic-hub/platform/config';
import { TokenIssuer } from '@clinic-hub/platform/token-issuer';
import { ClinicRegistry } from '../clinics/clinic-registry.js';

const USAGE = `Usage: npm run token -- --role ROLE --clinic CLINIC [--sub ID] [--name NAME] [--ticket TICKET] [--ttl SECONDS] [--json]
  ROLE is one of: ${ROLES.join(', ')}; CLINIC is a clinic id of CLINICS_DIR (config/clinics), or '*' for admin and service tokens.`;

function fail(message: string): never {
  process.stderr.write(`${message}\n${USAGE}\n`);
  process.exit(2);
}

const { values } = parseArgs({
  options: {
    role: { type: 'string' },
    clinic: { type: 'string' },
    sub: { type: 'string' },
    ticket: { type: 'string' },
    name: { type: 'string' },
    ttl: { type: 'string', default: '3600' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const role = Role.safeParse(values.role);
if (!role.success) fail(`--role: expected one of ${ROLES.join(', ')}`);
if (!values.clinic) fail('--clinic: required');
const ttl = Number(values.ttl);
// As POST /api/tokens: revocations are kept for as long as a token can live (revocation-list.ts).
if (!Number.isInteger(ttl) || ttl < 60 || ttl > 30 * 86400) fail('--ttl: a whole number of seconds from 60 to 2592000 (30 days)');
if (role.data === 'patient' && !values.ticket) fail('--ticket: required for patient tokens');

// The hub refuses tokens of clinics it does not serve (CLINIC_NOT_FOUND), as POST /api/tokens does: so does this.
if (values.clinic !== '*') {
  let clinics: ClinicRegistry;
  try {
    clinics = ClinicRegistry.fromDirectory(process.env.CLINICS_DIR ?? resolve(import.meta.dirname, '../../../config/clinics'));
  } catch (error) {
    fail(error instanceof ConfigError ? error.message : String(error));
  }
  if (!clinics.get(values.clinic)) {
    fail(`CLINIC_NOT_FOUND: no clinic "${values.clinic}" in CLINICS_DIR (${clinics.ids().join(', ')}); add its file to config/clinics or check the id.`);
  }
}

const secretFile = resolve(import.meta.dirname, '../../../var/token-secret');
let env: NodeJS.ProcessEnv;
try {
  env = withSecretFiles(process.env, ['HUB_TOKEN_SECRET']);
} catch (error) {
  fail(error instanceof ConfigError ? error.message : String(error));
}
const secret = env.HUB_TOKEN_SECRET ?? (existsSync(secretFile) ? readFileSync(secretFile, 'utf8').trim() : '');
if (secret.length < 32) fail('HUB_TOKEN_SECRET is not set (nor var/token-secret from `npm start`): set it to the hub\'s secret.');

const issuer = new TokenIssuer(secret);
const sub = values.sub ?? `${role.data}:${values.clinic}:cli`;
try {
  const name = values.name?.trim();
  if (name && role.data === 'patient') fail('--name: only for staff, doctors and admins (a patient token never carries a name)');
  const issued = await issuer.issue({ sub, role: role.data, clinic: values.clinic, ...(values.ticket ? { ticket: values.ticket } : {}), ...(name ? { name } : {}) }, ttl);
  if (values.json) process.stdout.write(`${JSON.stringify({ token: issued.token, expiresAt: issued.expiresAt, id: issued.id, role: role.data, clinic: values.clinic, sub })}\n`);
  else process.stdout.write(`${issued.token}\n`);
} catch (error) {
  fail(`cannot issue this token: ${(error as Error).message}`);
}
