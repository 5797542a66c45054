/**
 * What `npm start` prints once the stack runs: the links to the pages with
 * their tokens, on this machine and, when the hub listens on every interface,
 * at this machine's address on the local network (a phone, the waiting-room
 * TV and the other desks reach it there). Pure: start.ts gives it the facts,
 * tests give it the same and read what it makes.
 */
import type { NetworkInterfaceInfo } from 'node:os';

/**
 * This machine's address on the local network: the first IPv4 address of an
 * interface that is not loopback, in the order the system lists them (the
 * wired or wireless card comes before docker0 and VPNs on the usual systems;
 * HUB_PUBLIC_URL overrides it). null when there is none.
 */
export function lanAddress(interfaces: NodeJS.Dict<NetworkInterfaceInfo[]>): string | null {
  for (const addresses of Object.values(interfaces)) {
    for (const address of addresses ?? []) {
      if (address.family === 'IPv4' && !address.internal) return address.address;
    }
  }
  return null;
}

/**
 * The URL a hub that binds `host`:`port` is reached at from other machines,
 * or null when it cannot be (bound to loopback or one address that is not
 * the LAN's, or no LAN address).
 */
export function lanUrl(host: string, port: number, lan: string | null): string | null {
  if (!lan || port === 0) return null;
  if (host !== '0.0.0.0' && host !== '::' && host !== lan) return null;
  return `http://${lan}:${port}`;
}

export interface PageTokens {
  display: string;
  staff: string;
  doctor: string;
}

export interface BannerFacts {
  server: 'uws' | 'node';
  clinic: string;
  /** The hub on this machine: http://localhost:PORT. */
  localUrl: string;
  /** HUB_PUBLIC_URL as configured by the user, or null when unset. */
  configuredPublicUrl: string | null;
  /** The LAN URL start.ts chose as the public URL when HUB_PUBLIC_URL was unset, or null. */
  lanUrl: string | null;
  tokens: PageTokens;
  mediaUrl: string;
  recordingsDir: string;
  /** The command that runs an AI worker, or null when no model or engine is configured. */
  aiWorkerCommand: string | null;
}

/** Rows of label and value, the values starting in one column. */
export function alignRows(rows: [label: string, value: string][], indent = '  '): string[] {
  const width = Math.max(...rows.map(([label]) => label.length));
  return rows.map(([label, value]) => `${indent}${`${label}:`.padEnd(width + 1)}  ${value}`);
}

function pageRows(base: string, clinic: string, tokens: PageTokens): [string, string][] {
  return [
    [`Waiting-room display (${clinic})`, `${base}/display#token=${tokens.display}`],
    [`Staff console (${clinic})`, `${base}/staff#token=${tokens.staff}`],
    [`Doctor's console (${clinic})`, `${base}/staff#token=${tokens.doctor}`],
    [`Staff chat (${clinic})`, `${base}/chat#token=${tokens.staff}`],
  ];
}

export function startBanner(facts: BannerFacts): string {
  const { clinic, tokens } = facts;
  const engine = facts.server === 'uws' ? 'uWebSockets.js' : 'Node HTTP';
  const remoteBase = facts.configuredPublicUrl ?? facts.lanUrl;
  const rows: [string, string][] = [
    ...pageRows(facts.localUrl, clinic, tokens),
    ['Health', `${facts.localUrl}/healthz`],
    ['Media server (video)', `${facts.mediaUrl}  (${facts.mediaUrl}/healthz)`],
    ['Recordings (encrypted)', facts.recordingsDir],
    ['AI workers', facts.aiWorkerCommand ?? 'off (docs/ai-workers.md: `clinic models pull NAME`, then `npm run ai:worker`)'],
  ];
  const lines = ['', `Clinic Hub is running (${engine}) at ${facts.localUrl}`, '', 'On this machine:', ...alignRows(rows)];
  if (remoteBase) {
    lines.push(
      '',
      facts.configuredPublicUrl
        ? `At HUB_PUBLIC_URL (${facts.configuredPublicUrl}), for phones, the waiting-room TV and other desks:`
        : `From other devices on this network (phones, the waiting-room TV, other desks), at this machine's LAN address:`,
      ...alignRows(pageRows(remoteBase, clinic, tokens).slice(0, 3)),
    );
  }
  lines.push('');
  if (facts.configuredPublicUrl) {
    lines.push(`Patient links (check-in) use HUB_PUBLIC_URL, ${facts.configuredPublicUrl}.`);
  } else if (facts.lanUrl) {
    lines.push(
      `Patient links (check-in) use ${facts.lanUrl}, this machine's LAN address. To use another address or a name,`,
      'set the public URL and start again: HUB_PUBLIC_URL=https://clinic.example.jp npm start',
    );
  } else {
    lines.push(
      `Patient links (check-in) use ${facts.localUrl}: this machine has no LAN address (or HUB_HOST keeps the hub to one address),`,
      'so only this machine can open them. Set the address patients reach: HUB_PUBLIC_URL=http://ADDRESS:PORT npm start',
    );
  }
  lines.push(
    'Video on another device needs https (browsers give cameras only to https pages and localhost): put TLS in front',
    'of the hub and the media server and set HUB_PUBLIC_URL and MEDIA_PUBLIC_URL (README.md, "Deploying").',
    "The doctor's console joins video consultations as the doctor, the staff console as a nurse. A console for",
    `each doctor (prints its link): npx clinic token issue --role doctor --clinic ${clinic} --sub doctor:${clinic}:NAME`,
    '',
    'An admin token for this machine is in var/local.json (the `clinic` CLI uses it). Press Ctrl-C to stop.',
    '',
  );
  return lines.join('\n');
}
