import { RoomTokenClaims, type ErrorCode } from '@clinic-hub/protocol';
import { Hs256Key } from './jwt.js';

export interface VerifiedRoomToken extends RoomTokenClaims {
  /** Expiry, seconds since the epoch. */
  exp: number;
}

export class RoomTokenError extends Error {
  constructor(readonly code: Extract<ErrorCode, 'AUTH_REQUIRED' | 'AUTH_INVALID' | 'AUTH_EXPIRED'>) {
    super(code);
  }
}

/**
 * Room tokens for the media-server: the hub signs them at admission, the
 * media-server verifies them. Their own key (MEDIA_TOKEN_SECRET), so a
 * media-server that is broken into cannot mint hub tokens, and `aud: "media"`,
 * so that a hub token is never a room token and the other way round.
 */
export class RoomTokenVerifier {
  protected readonly key: Hs256Key;

  constructor(secret: string) {
    if (secret.length < 32) throw new Error('the media token secret must be at least 32 characters');
    this.key = new Hs256Key(secret);
  }

  verify(token: unknown): VerifiedRoomToken {
    const verified = this.key.verify(token);
    if (!verified.ok) throw new RoomTokenError(verified.code);
    const claims = RoomTokenClaims.safeParse(verified.payload);
    if (!claims.success) throw new RoomTokenError('AUTH_INVALID');
    return { ...claims.data, exp: verified.payload.exp };
  }
}

/** The hub signs room tokens at admission (`@clinic-hub/platform/token-issuer`); a media-server only verifies them. */
export class RoomTokenIssuer extends RoomTokenVerifier {
  issue(claims: Omit<RoomTokenClaims, 'aud'>, ttlSeconds: number): { token: string; expiresAt: number } {
    const valid = RoomTokenClaims.parse({ ...claims, aud: 'media' });
    return this.key.sign(valid, ttlSeconds);
  }
}
