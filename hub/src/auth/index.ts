export { Hs256Key, type JwtFailure } from './jwt.js';
export { TokenIssuer, TokenError, type VerifiedToken } from './tokens.js';
export { RoomTokenIssuer, RoomTokenError, type VerifiedRoomToken } from './room-tokens.js';
