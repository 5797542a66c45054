/**
 * `@clinic-hub/platform/token-issuer`: signing tokens. Only the hub issues
 * tokens (and the tests that stand in for it); services that check them
 * import `@clinic-hub/platform/tokens`. The floors test holds this.
 */
export { Hs256Key } from './jwt.js';
export { TokenIssuer } from './tokens.js';
export { RoomTokenIssuer } from './room-tokens.js';
