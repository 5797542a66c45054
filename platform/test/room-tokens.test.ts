import { describe, expect, it } from 'vitest';
import { RoomTokenIssuer } from '../src/tokens/issuer.js';
import { RoomTokenError } from '../src/tokens/verifier.js';
import { TokenIssuer } from '../src/tokens/issuer.js';
import { TokenError } from '../src/tokens/verifier.js';

const SECRET = 'room-token-secret-room-token-secret!';
const claims = { sub: 'p-1', clinic: 'testclinic', consult: 'c0nsult-01', part: 'patient', name: '患者A' } as const;

function codeOf(action: () => unknown): string {
  try {
    action();
  } catch (error) {
    if (error instanceof RoomTokenError || error instanceof TokenError) return error.code;
    throw error;
  }
  return 'accepted';
}

describe('room tokens', () => {
  it('round-trips the claims with aud "media"', () => {
    const issuer = new RoomTokenIssuer(SECRET);
    const { token } = issuer.issue(claims, 60);
    expect(issuer.verify(token)).toMatchObject({ ...claims, aud: 'media' });
  });

  it('is never a hub token, and a hub token is never a room token, even under one secret', () => {
    const rooms = new RoomTokenIssuer(SECRET);
    const hub = new TokenIssuer(SECRET);
    expect(codeOf(() => hub.verifySync(rooms.issue(claims, 60).token))).toBe('AUTH_INVALID');
    const hubToken = hub.issueSync({ sub: 'p-1', role: 'patient', clinic: 'testclinic' }, 60).token;
    expect(codeOf(() => rooms.verify(hubToken))).toBe('AUTH_INVALID');
  });

  it('refuses other keys, expiry and junk with codes', () => {
    const issuer = new RoomTokenIssuer(SECRET);
    const other = new RoomTokenIssuer(`${SECRET}-other`);
    expect(codeOf(() => issuer.verify(other.issue(claims, 60).token))).toBe('AUTH_INVALID');
    expect(codeOf(() => issuer.verify(issuer.issue(claims, -1).token))).toBe('AUTH_EXPIRED');
    expect(codeOf(() => issuer.verify(undefined))).toBe('AUTH_REQUIRED');
    expect(codeOf(() => issuer.verify('a.b'))).toBe('AUTH_INVALID');
    expect(() => issuer.issue({ ...claims, part: 'display' as never }, 60)).toThrow();
  });
});
