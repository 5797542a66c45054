/**
 * Behind NAT (a container with published UDP ports, a cloud VM with a
 * floating IP) the host candidates werift gathers carry private addresses.
 * Each IPv4 host candidate is offered a second time with the announced public
 * address and the same port, at a slightly lower priority, so clients on the
 * private network still use the direct one.
 */
export function announceCandidates(sdp: string, announcedIp: string): string {
  const lines = sdp.split('\r\n');
  const out: string[] = [];
  const seen = new Set<string>();
  for (const line of lines) {
    out.push(line);
    const match = /^a=candidate:(\S+) (\d+) (udp|UDP) (\d+) (\d{1,3}(?:\.\d{1,3}){3}) (\d+) typ host(.*)$/.exec(line);
    if (!match) continue;
    const [, foundation, component, transport, priority, address, port, rest] = match;
    if (address === announcedIp || address!.startsWith('127.')) continue;
    const key = `${component} ${port}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const announcedFoundation = `${foundation}a`.slice(-32);
    out.push(`a=candidate:${announcedFoundation} ${component} ${transport} ${Math.max(0, Number(priority) - 1)} ${announcedIp} ${port} typ host${rest}`);
  }
  return out.join('\r\n');
}
