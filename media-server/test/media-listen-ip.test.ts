/**
 * Where mediasoup's WebRtcServer listens (create-engine.ts, mediaListenIp):
 * on the announced address when that is one of this machine's own, so UDP
 * answers leave from the address browsers send to. The end-to-end proof is
 * consult-network.test.ts's flap (ICE back on UDP after the browser's address
 * changed); this is the rule's edges.
 */
import { describe, expect, it } from 'vitest';
import { mediaListenIp } from '../src/engine/create-engine.js';

const LOCAL = ['127.0.0.1', '10.0.0.5', '198.18.0.1', '198.18.0.5'];

describe('mediaListenIp', () => {
  it('on the wildcard with an announced address of this machine, listens on that address alone', () => {
    expect(mediaListenIp('0.0.0.0', '198.18.0.1', LOCAL)).toBe('198.18.0.1');
    expect(mediaListenIp('0.0.0.0', '10.0.0.5', LOCAL)).toBe('10.0.0.5');
  });

  it('keeps the wildcard for an address that is not this machine’s (NAT, published container ports) or when none is announced', () => {
    expect(mediaListenIp('0.0.0.0', '203.0.113.10', LOCAL)).toBe('0.0.0.0');
    expect(mediaListenIp('0.0.0.0', null, LOCAL)).toBe('0.0.0.0');
  });

  it('a listening address given (MEDIA_HOST) is kept as it is', () => {
    expect(mediaListenIp('127.0.0.1', '198.18.0.1', LOCAL)).toBe('127.0.0.1');
    expect(mediaListenIp('10.0.0.5', '203.0.113.10', LOCAL)).toBe('10.0.0.5');
  });
});
