import { io as connectClient, type Socket as ClientSocket } from 'socket.io-client';
import { NOTIFY_NAMESPACE, type InAppNotice } from '@clinic-hub/protocol';

/** A client of the /notify namespace at `url` with `token`, connected, and every notice it hears. */
export async function connectNotify(url: string, token: string): Promise<{ socket: ClientSocket; notices: InAppNotice[] }> {
  const socket = connectClient(`${url}${NOTIFY_NAMESPACE}`, { auth: { token }, transports: ['websocket'], forceNew: true });
  const notices: InAppNotice[] = [];
  socket.on('notify:notice', (notice: InAppNotice) => notices.push(notice));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('connect_error', reject);
  });
  return { socket, notices };
}
