/**
 * Every clinic-scoped pub/sub channel is `ch:{clinic}:<kind>`: the clinic id
 * is the hash tag, so a clinic's channel lives in the same Cluster slot as its
 * keys. One builder, one pattern and one parser of those names for every
 * service (queue `live`, `chat`, `consult-control`, `consult-ai`). The queue's
 * `live` and the chat's `chat` are sharded channels (SPUBLISH, followed per
 * clinic with SSUBSCRIBE: a Redis Cluster sends them to the clinic's shard
 * only); `consult-control` and `consult-ai` are classic channels, followed
 * with their pattern.
 */
export const clinicChannel = (clinic: string, kind: string) => `ch:{${clinic}}:${kind}`;

/** The pattern matching that kind of channel for every clinic (classic pub/sub only: sharded channels have no patterns). */
export const clinicChannelPattern = (kind: string) => `ch:{*}:${kind}`;

/** The clinic of a channel `ch:{clinic}:<kind>`, or null when the channel is of another kind. */
export function clinicOfChannel(channel: string, kind: string): string | null {
  const suffix = `}:${kind}`;
  if (!channel.startsWith('ch:{') || !channel.endsWith(suffix)) return null;
  const clinic = channel.slice('ch:{'.length, -suffix.length);
  return clinic.length > 0 ? clinic : null;
}
