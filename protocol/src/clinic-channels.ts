/**
 * Every clinic-scoped pub/sub channel is `ch:{clinic}:<kind>`: the clinic id
 * is the hash tag, so a clinic's channel lives in the same Cluster slot as its
 * keys. One builder and one parser of those names for every service (queue
 * `live`, `chat`, `consult-control`, `consult-ai` …). They are all sharded
 * channels: published with SPUBLISH and followed per clinic with SSUBSCRIBE
 * (a Redis Cluster sends them to the clinic's shard only). Sharded pub/sub
 * has no patterns: a subscriber names each clinic's channel.
 */
export const clinicChannel = (clinic: string, kind: string) => `ch:{${clinic}}:${kind}`;

/** The clinic of a channel `ch:{clinic}:<kind>`, or null when the channel is of another kind. */
export function clinicOfChannel(channel: string, kind: string): string | null {
  const suffix = `}:${kind}`;
  if (!channel.startsWith('ch:{') || !channel.endsWith(suffix)) return null;
  const clinic = channel.slice('ch:{'.length, -suffix.length);
  return clinic.length > 0 ? clinic : null;
}
