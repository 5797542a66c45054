/** IPC messages between the queue benchmark (coordinator) and its display workers. */

export type CoordinatorMessage =
  | {
      type: 'connect';
      /** One entry per display this worker holds: which hub node and its token. */
      clients: { url: string; token: string }[];
      /** Handshakes in flight at once in this worker: the ramp. */
      concurrency: number;
      timeoutMs: number;
      progressMs: number;
    }
  | { type: 'report' }
  | { type: 'stop' };

export interface WorkerProgress {
  type: 'progress' | 'connected';
  connected: number;
  failed: number;
  disconnects: number;
  /** First arrivals of ticket.called events, summed over displays. */
  calledReceived: number;
  duplicates: number;
  /** queue:event messages of any type. */
  messages: number;
}

export interface WorkerResult {
  type: 'result';
  pid: number;
  clients: number;
  /** 1 for each display that joined /queue. */
  joined: Uint8Array;
  /** Per display: WebSocket open to namespace joined, ms (NaN if it never joined). */
  connectMs: Float64Array;
  /** ticket.called sequence numbers seen, ascending. */
  seqs: number[];
  /** Per seq, per display: first arrival (timeOrigin + now, ms), NaN if it never arrived. */
  times: Float64Array[];
  /** Per seq: arrivals beyond the first, over all displays. */
  duplicates: number[];
  bucketMs: number;
  /** [time bucket (arrival ms / bucketMs, floored), queue:event messages] */
  buckets: [number, number][];
  byType: Record<string, number>;
  messages: number;
  malformed: number;
  failed: number;
  disconnects: number;
  errors: string[];
}

export type WorkerMessage = WorkerProgress | WorkerResult | { type: 'fatal'; error: string };
