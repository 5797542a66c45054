import { resolveWorkerBinary } from '../../src/mediasoup-worker-bin.js';

/**
 * The mediasoup-worker this checkout built (or MEDIASOUP_WORKER_BIN). Tests
 * that need it fail, not skip, without it: the worker is part of the product,
 * and the message names the command that builds it.
 */
export function builtWorkerBin(): string {
  const found = resolveWorkerBinary(process.env);
  if (!found.ok) throw new Error(`${found.code}: ${found.message}`);
  return found.bin;
}
