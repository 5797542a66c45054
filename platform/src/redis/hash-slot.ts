/**
 * Redis Cluster's hash slot of a key (CRC16/XMODEM of the key, or of its
 * hash tag, modulo 16384), computed here so that code and tests can check
 * what a cluster would refuse (CROSSSLOT) before it reaches one. The hash
 * tag is the part between the first `{` and the next `}`, when it is not
 * empty: `ch:{c1}:seq` and `ch:{c1}:tickets` share a slot.
 */
export const HASH_SLOTS = 16384;

const TABLE = (() => {
  const table = new Uint16Array(256);
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[byte] = crc;
  }
  return table;
})();

function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ byte) & 0xff]!;
  return crc;
}

export function hashSlot(key: string): number {
  const bytes = Buffer.from(key, 'utf8');
  const open = bytes.indexOf(0x7b); // {
  if (open !== -1) {
    const close = bytes.indexOf(0x7d, open + 1); // }
    if (close > open + 1) return crc16(bytes.subarray(open + 1, close)) % HASH_SLOTS;
  }
  return crc16(bytes) % HASH_SLOTS;
}

/** A script or transaction whose keys a cluster would refuse: they are not all in one hash slot. */
export class CrossSlotKeys extends Error {
  override readonly name = 'CrossSlotKeys';
  readonly code = 'REDIS_KEYS_CROSS_SLOT';
  constructor(what: string, keys: readonly string[]) {
    super(`${what}: its keys are in different hash slots (${keys.map((key) => `${key} → ${hashSlot(key)}`).join(', ')}); give them one hash tag {…} [REDIS_KEYS_CROSS_SLOT]`);
  }
}

/** Throws CrossSlotKeys unless every key hashes to the slot of the first. */
export function assertOneSlot(what: string, keys: readonly string[]): void {
  if (keys.length < 2) return;
  const slot = hashSlot(keys[0]!);
  if (keys.some((key) => hashSlot(key) !== slot)) throw new CrossSlotKeys(what, keys);
}
