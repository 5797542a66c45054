import type { StaffPresence } from '@clinic-hub/protocol';
import { chatRequest, type ChatSocket } from './chat-connection.js';

/**
 * The clinic's staff presence, kept current: a snapshot (`chat:staff-presence`)
 * on every connect, then each `chat:presence` change. An entry only replaces
 * a newer one it never saw, so a snapshot read just before a change cannot
 * undo it.
 */
export function followStaffPresence(socket: ChatSocket, onChange: (staff: ReadonlyMap<string, StaffPresence>) => void): ReadonlyMap<string, StaffPresence> {
  const staff = new Map<string, StaffPresence>();
  const apply = (presence: StaffPresence) => {
    const known = staff.get(presence.member);
    if (known && known.since > presence.since) return;
    if (presence.status === 'offline') staff.delete(presence.member);
    else staff.set(presence.member, presence);
  };
  socket.on('chat:presence', (presence) => {
    apply(presence);
    onChange(staff);
  });
  const refresh = async () => {
    const asked = Date.now();
    const ack = await chatRequest(socket, 'chat:staff-presence', {});
    if (!ack.ok) return;
    const present = new Set(ack.staff.map((p) => p.member));
    for (const [member, known] of staff) if (!present.has(member) && known.since < asked) staff.delete(member);
    for (const presence of ack.staff) apply(presence);
    onChange(staff);
  };
  socket.on('connect', () => void refresh().catch(() => undefined));
  if (socket.connected) void refresh().catch(() => undefined);
  return staff;
}
