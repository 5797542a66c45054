import { BlockList, isIP } from 'node:net';

/**
 * Which addresses are our own proxies (the load balancer in front of the
 * hubs). Only a request that arrives from one of them may tell us, in
 * X-Forwarded-For, who the client really is; anyone else could write any
 * address there and have it land in the audit stream.
 */
export class TrustedProxies {
  private readonly list = new BlockList();
  readonly isEmpty: boolean;

  /** `entries`: IP addresses or CIDR ranges, IPv4 or IPv6 (`10.0.0.0/8`, `::1`). Throws on anything else. */
  constructor(entries: readonly string[]) {
    for (const entry of entries) {
      const [address = '', bits] = entry.split('/');
      const family = isIP(address);
      if (family === 0) throw new Error(`"${entry}" is not an IP address or CIDR range`);
      const type = family === 4 ? 'ipv4' : 'ipv6';
      if (bits === undefined) {
        this.list.addAddress(address, type);
        continue;
      }
      const prefix = Number(bits);
      if (!/^\d{1,3}$/.test(bits) || prefix > (family === 4 ? 32 : 128)) throw new Error(`"${entry}" has a bad prefix length`);
      this.list.addSubnet(address, prefix, type);
    }
    this.isEmpty = entries.length === 0;
  }

  has(address: string): boolean {
    const plain = unmapped(address);
    const family = isIP(plain);
    return family !== 0 && this.list.check(plain, family === 4 ? 'ipv4' : 'ipv6');
  }

  /**
   * The client's address: the peer itself unless it is a trusted proxy; then
   * the right-most X-Forwarded-For entry that is not one of ours (entries to
   * its left were written by the client and prove nothing).
   */
  clientAddress(peer: string, forwardedFor: string | string[] | undefined): string {
    const direct = unmapped(peer);
    if (this.isEmpty || forwardedFor === undefined || !this.has(direct)) return direct;
    const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor)
      .split(',')
      .map((hop) => unmapped(hop.trim()))
      .filter((hop) => isIP(hop) !== 0);
    for (let index = hops.length - 1; index >= 0; index -= 1) {
      const hop = hops[index]!;
      if (!this.has(hop)) return hop;
    }
    return hops[0] ?? direct;
  }
}

/** `::ffff:10.0.0.1` (an IPv4 peer on a dual-stack socket) is `10.0.0.1`. */
function unmapped(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}
