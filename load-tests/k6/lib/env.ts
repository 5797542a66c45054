/**
 * The scripts' settings, from k6's environment (`k6 run -e NAME=value …` or
 * the shell's variables). Read at module load, in k6's init context: a
 * missing or bad setting stops k6 before any virtual user starts, with a
 * message naming the variable.
 */

const README = 'load-tests/README.md, "k6 scripts"';

function raw(name: string): string | undefined {
  const value = __ENV[name]?.trim();
  return value === undefined || value === '' ? undefined : value;
}

/** A setting the script cannot run without. */
export function requiredEnv(name: string, what: string): string {
  const value = raw(name);
  if (value === undefined) throw new Error(`${name} is not set: ${what}. Give it with -e ${name}=… (${README}).`);
  return value;
}

export function optionalEnv(name: string): string | undefined {
  return raw(name);
}

export function numberEnv(name: string, fallback: number, range: { min: number; max: number; integer?: boolean }): number {
  const value = raw(name);
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < range.min || n > range.max || (range.integer && !Number.isInteger(n))) {
    throw new Error(`${name} must be a ${range.integer ? 'whole ' : ''}number from ${range.min} to ${range.max} (got "${value}").`);
  }
  return n;
}

/** A comma-separated list; empty when unset. */
export function listEnv(name: string): string[] {
  return (raw(name) ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

/**
 * HUB_URL: the hub's base URL (`https://hub.example.jp`), or several,
 * comma-separated, to spread connections over hub nodes without a load
 * balancer in front.
 */
export function hubUrls(): string[] {
  requiredEnv('HUB_URL', 'the hub to load, e.g. https://hub.example.jp (several nodes: comma-separated)');
  const urls = listEnv('HUB_URL');
  for (const url of urls) {
    if (!/^https?:\/\/[^/\s]+/.test(url)) throw new Error(`HUB_URL: "${url}" is not an http:// or https:// URL.`);
  }
  return urls;
}

/** The connection auth for a token; CLINIC names the clinic an all-clinics (admin or service) token acts for. */
export function authFor(token: string): { token: string; clinic?: string } {
  const clinic = optionalEnv('CLINIC');
  return clinic === undefined ? { token } : { token, clinic };
}
