/**
 * `@clinic-hub/platform/tokens`: verifying the hub's tokens and the media
 * room tokens. What a service that only checks tokens (the media-server,
 * the hub's socket auth) imports; signing is in `token-issuer`.
 */
export { type JwtFailure } from './jwt.js';
export { TokenVerifier, TokenError, type VerifiedToken, type IssuedToken, type SessionOf } from './tokens.js';
export { RoomTokenVerifier, RoomTokenError, type VerifiedRoomToken } from './room-tokens.js';
