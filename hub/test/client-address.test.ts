import { describe, expect, it } from 'vitest';
import { TrustedProxies } from '../src/http/client-address.js';

describe('TrustedProxies.clientAddress', () => {
  const proxies = new TrustedProxies(['10.0.0.0/8', '::1']);

  it('believes X-Forwarded-For only from a trusted proxy', () => {
    expect(proxies.clientAddress('10.1.2.3', '203.0.113.7')).toBe('203.0.113.7');
    expect(proxies.clientAddress('::ffff:10.1.2.3', '203.0.113.7')).toBe('203.0.113.7');
    expect(proxies.clientAddress('198.51.100.9', '203.0.113.7')).toBe('198.51.100.9');
    expect(proxies.clientAddress('::ffff:198.51.100.9', undefined)).toBe('198.51.100.9');
  });

  it('takes the right-most untrusted hop, so a client cannot choose its own address', () => {
    // The client wrote "1.1.1.1" itself; the proxy appended the real peer.
    expect(proxies.clientAddress('10.0.0.5', '1.1.1.1, 203.0.113.7')).toBe('203.0.113.7');
    expect(proxies.clientAddress('::1', ['1.1.1.1', '203.0.113.7, 10.0.0.6'])).toBe('203.0.113.7');
    expect(proxies.clientAddress('10.0.0.5', 'garbage, 203.0.113.7')).toBe('203.0.113.7');
    expect(proxies.clientAddress('10.0.0.5', 'garbage')).toBe('10.0.0.5');
  });

  it('trusts nobody when empty, and refuses what is not an address', () => {
    expect(new TrustedProxies([]).clientAddress('10.0.0.5', '203.0.113.7')).toBe('10.0.0.5');
    expect(() => new TrustedProxies(['proxy.local'])).toThrow(/not an IP/);
    expect(() => new TrustedProxies(['10.0.0.0/33'])).toThrow(/prefix/);
  });
});
