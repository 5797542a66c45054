import type { RedisClient } from '@clinic-hub/platform/redis';
import { MEDIA_NODES_KEY, mediaNodeKey, type MediaNodeInfo } from '@clinic-hub/protocol';

/**
 * The media-server nodes that are alive now: those whose `media:node:<id>`
 * hash still exists (each node refreshes it every few seconds with a short
 * expiry, so a node that died drops out by itself). Ids left in the
 * `media:nodes` set by a dead node are ignored here; the live nodes take them
 * out on their beats (the set is the media-servers' to keep).
 */
export async function listMediaNodes(redis: RedisClient): Promise<MediaNodeInfo[]> {
  const ids = await redis.smembers(MEDIA_NODES_KEY);
  if (ids.length === 0) return [];
  // One command per node, not one pipeline: on a Redis Cluster the nodes' hashes lie in different slots.
  const replies = await Promise.all(ids.map((id) => redis.hgetall(mediaNodeKey(id))));
  const nodes: MediaNodeInfo[] = [];
  ids.forEach((id, i) => {
    const node = parseMediaNode(id, replies[i] ?? null);
    if (node) nodes.push(node);
  });
  return nodes.sort((a, b) => a.id.localeCompare(b.id));
}

function parseMediaNode(id: string, fields: Record<string, string> | null): MediaNodeInfo | null {
  if (!fields || !fields.url) return null;
  const count = (value: string | undefined) => {
    const n = Number(value ?? 0);
    return Number.isFinite(n) && n >= 0 ? n : 0;
  };
  return {
    id,
    url: fields.url,
    rooms: count(fields.rooms),
    participants: count(fields.participants),
    startedAt: count(fields.startedAt),
    draining: fields.draining === '1' || fields.draining === 'true',
  };
}

/** Where a new consultation goes: the live node that is not draining with the fewest rooms (then the fewest people); null when there is none. */
export function pickMediaNode(nodes: readonly MediaNodeInfo[]): MediaNodeInfo | null {
  let best: MediaNodeInfo | null = null;
  for (const node of nodes) {
    if (node.draining) continue;
    if (!best || node.rooms < best.rooms || (node.rooms === best.rooms && node.participants < best.participants)) best = node;
  }
  return best;
}
