import type { Socket } from 'socket.io-client';
import { CONSULT_NAMESPACE, type AdmitResult, type ConsultClientToServer, type ConsultServerToClient, type QueueEvent } from '@clinic-hub/protocol';
import { CliError } from './cli-error.js';
import type { Connection } from './connection.js';
import { connectHubSocket, emitterOf, sendAction, sendRetried, type Emit } from './queue-client.js';

type ConsultSocket = Socket<ConsultServerToClient, ConsultClientToServer>;

/** What calling the next patient did: a call to a room, or, in an online department, an admission to video. */
export type CallResult = { kind: 'called'; event: QueueEvent; replayed: boolean } | { kind: 'admitted'; admission: AdmitResult };

/**
 * Admits the next waiting patient of an online department to video (docs/consultations.md, "The flow"):
 * the hub calls them to the room and opens the consultation, and their page shows the join button.
 */
export async function admitNext(connection: Connection, dept: string, room: string): Promise<AdmitResult> {
  const socket = await connectHubSocket<ConsultSocket>(connection, CONSULT_NAMESPACE);
  try {
    return (await sendRetried(emitterOf(socket), 'consult:admit', { dept, room })) as { ok: true } & AdmitResult;
  } finally {
    socket.close();
  }
}

/**
 * Calls the department's next patient to the room. The hub refuses a plain
 * call in an online department (QUEUE_DEPT_ONLINE: the patient is at home and
 * could only be told to press a join button that does not exist); there the
 * patient is admitted to video instead, which opens their consultation.
 */
export async function callNextPatient(emit: Emit, connection: Connection, dept: string, room: string): Promise<CallResult> {
  try {
    const ack = await sendAction(emit, 'queue:call-next', { dept, room });
    return { kind: 'called', event: ack.event, replayed: ack.replayed };
  } catch (error) {
    if (!(error instanceof CliError) || error.code !== 'QUEUE_DEPT_ONLINE') throw error;
    return { kind: 'admitted', admission: await admitNext(connection, dept, room) };
  }
}
