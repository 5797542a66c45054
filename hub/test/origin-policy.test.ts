import { describe, expect, it } from 'vitest';
import { originAllowed } from '../src/http/origin-policy.js';

const sameOriginOnly = { allowedOrigins: [] as string[], publicUrl: null };

describe('originAllowed', () => {
  it('lets clients without an Origin through: the CLI, k6 and servers are checked by their token', () => {
    expect(originAllowed(sameOriginOnly, undefined, 'hub.example.jp')).toBe(true);
    expect(originAllowed(sameOriginOnly, '', undefined)).toBe(true);
  });

  it('lets a page of the hub’s own origin through: the Host it came to, or HUB_PUBLIC_URL', () => {
    expect(originAllowed(sameOriginOnly, 'https://hub.example.jp', 'hub.example.jp')).toBe(true);
    expect(originAllowed(sameOriginOnly, 'http://127.0.0.1:8080', '127.0.0.1:8080')).toBe(true);
    expect(originAllowed(sameOriginOnly, 'https://HUB.example.jp', 'hub.EXAMPLE.jp')).toBe(true);
    expect(originAllowed({ allowedOrigins: [], publicUrl: 'https://hub.example.jp/' }, 'https://hub.example.jp', 'hub-1:8080')).toBe(true);
  });

  it('refuses pages of other origins, a different port or scheme, and Origin: null', () => {
    expect(originAllowed(sameOriginOnly, 'https://evil.example.com', 'hub.example.jp')).toBe(false);
    expect(originAllowed(sameOriginOnly, 'http://127.0.0.1:9999', '127.0.0.1:8080')).toBe(false);
    expect(originAllowed({ allowedOrigins: [], publicUrl: 'https://hub.example.jp' }, 'http://hub.example.jp', 'hub-1:8080')).toBe(false);
    expect(originAllowed(sameOriginOnly, 'null', 'hub.example.jp')).toBe(false);
    expect(originAllowed(sameOriginOnly, 'file:///tmp/page.html', 'hub.example.jp')).toBe(false);
    expect(originAllowed(sameOriginOnly, 'https://hub.example.jp.evil.com', 'hub.example.jp')).toBe(false);
  });

  it('lets the listed origins through, and any with *', () => {
    const listed = { allowedOrigins: ['https://kiosk.clinic.example.jp'], publicUrl: null };
    expect(originAllowed(listed, 'https://kiosk.clinic.example.jp', 'hub.example.jp')).toBe(true);
    expect(originAllowed(listed, 'https://other.clinic.example.jp', 'hub.example.jp')).toBe(false);
    expect(originAllowed({ allowedOrigins: '*', publicUrl: null }, 'https://anything.example', 'hub.example.jp')).toBe(true);
  });
});
