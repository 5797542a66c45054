import type { Socket } from 'socket.io';
import { protocolError, type ErrorCode } from '@clinic-hub/protocol';
import type { ClinicRegistry } from '../clinics/clinic-registry.js';
import type { TrustedProxies } from '../http/client-address.js';
import { TokenError, type TokenVerifier, type VerifiedToken } from '@clinic-hub/platform/tokens';

/** Who is on the other end of a socket, fixed at connect and re-checked on every event. */
export interface SocketIdentity extends VerifiedToken {
  /** The clinic this socket acts for (a "*" admin token picks one with auth.clinic). */
  clinic: string;
  address: string;
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
 * Socket.IO middleware: verifies the handshake token and resolves the clinic.
 * `proxies`: our load balancers, whose X-Forwarded-For names the client's address.
 */
export function socketAuth(tokens: TokenVerifier, clinics: ClinicRegistry, proxies?: TrustedProxies) {
  return (socket: Socket, next: (error?: Error) => void): void => {
    const auth = (socket.handshake.auth ?? {}) as { token?: unknown; clinic?: unknown };
    tokens.verify(auth.token).then(
      (claims) => {
        // A clinic's token asking for another clinic is refused, not quietly given its own clinic.
        if (claims.clinic !== '*' && auth.clinic !== undefined && auth.clinic !== claims.clinic) {
          return next(new ConnectError('AUTH_WRONG_CLINIC'));
        }
        const clinic = claims.clinic === '*' ? auth.clinic : claims.clinic;
        // A clinic this hub does not serve, whoever's token names it.
        if (typeof clinic !== 'string' || !clinics.get(clinic)) return next(new ConnectError('CLINIC_NOT_FOUND', typeof clinic === 'string' ? clinic.slice(0, 64) : undefined));
        if (claims.role === 'patient' && !claims.ticket) return next(new ConnectError('AUTH_INVALID', 'patient token without ticket'));
        const { address, headers } = socket.handshake;
        socket.data.identity = {
          ...claims,
          clinic,
          address: proxies ? proxies.clientAddress(address, headers['x-forwarded-for']) : address,
        } satisfies SocketIdentity;
        next();
      },
      (error: unknown) => next(new ConnectError(error instanceof TokenError ? error.code : 'AUTH_INVALID')),
    );
  };
}
