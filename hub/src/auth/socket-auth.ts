import type { Socket } from 'socket.io';
import { protocolError, type ErrorCode } from '@clinic-hub/protocol';
import type { TrustedProxies } from '../http/client-address.js';
import { isRedisUnavailable } from '@clinic-hub/platform/redis';
import type { VerifiedToken } from '@clinic-hub/platform/tokens';
import type { Authenticator } from './authenticator.js';

/** Who is on the other end of a socket, fixed at connect (a refresh replaces the token's part) and re-checked on every event. */
export interface SocketIdentity extends VerifiedToken {
  /** The clinic this socket acts for (a "*" admin token picks one with auth.clinic). */
  clinic: string;
  /** The token's own clinic claim: the same, or "*" for an all-clinics token. */
  tokenClinic: string;
  address: string;
  /** Until when the socket may stay (ms): the token's expiry, or earlier for a patient whose ticket ended. */
  endsAt: number;
}

export class ConnectError extends Error {
  readonly data;
  constructor(code: ErrorCode, detail?: string) {
    super(code);
    this.data = protocolError(code, detail);
  }
}

export function identityOf(socket: Socket): SocketIdentity {
  return socket.data.identity as SocketIdentity;
}

/**
 * Socket.IO middleware for every namespace: checks the handshake token
 * (Authenticator: signature, expiry, revocation, a patient's ticket) and
 * resolves the clinic. `proxies`: our load balancers, whose X-Forwarded-For
 * names the client's address.
 */
export function socketAuth(authenticator: Authenticator, proxies?: TrustedProxies) {
  return (socket: Socket, next: (error?: Error) => void): void => {
    const auth = (socket.handshake.auth ?? {}) as { token?: unknown; clinic?: unknown };
    authenticator.checkFor(auth.token, auth.clinic).then(
      (checked) => {
        if (!checked.ok) return next(new ConnectError(checked.error.code, checked.error.detail));
        const { address, headers } = socket.handshake;
        socket.data.identity = {
          ...checked.token,
          clinic: checked.clinic,
          tokenClinic: checked.token.clinic,
          address: proxies ? proxies.clientAddress(address, headers['x-forwarded-for']) : address,
          endsAt: checked.endsAt,
        } satisfies SocketIdentity;
        next();
      },
      (error: unknown) => next(new ConnectError(isRedisUnavailable(error) ? 'STORE_UNAVAILABLE' : 'AUTH_INVALID')),
    );
  };
}
