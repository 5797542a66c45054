/**
 * Which web pages may open a socket to the hub, judged by the `Origin` header
 * browsers send with the handshake and the WebSocket upgrade:
 *
 * - no Origin: not a browser page (the CLI, k6, a server); its token is what counts;
 * - the hub's own origin: the page's host is the `Host` the request came to
 *   (so it works behind a load balancer that keeps `Host`), or the origin of
 *   HUB_PUBLIC_URL;
 * - an origin listed in HUB_ALLOWED_ORIGINS, or any with `*`.
 *
 * Everything else, `Origin: null` (sandboxed frames, files) included, is refused.
 */
export function originAllowed(
  policy: { allowedOrigins: string[] | '*'; publicUrl: string | null },
  origin: string | undefined,
  host: string | undefined,
): boolean {
  if (origin === undefined || origin === '') return true;
  if (policy.allowedOrigins === '*') return true;
  let page: URL;
  try {
    page = new URL(origin);
  } catch {
    return false;
  }
  if (page.protocol !== 'https:' && page.protocol !== 'http:') return false;
  if (host !== undefined && page.host === host.toLowerCase()) return true;
  if (policy.publicUrl !== null && page.origin === new URL(policy.publicUrl).origin) return true;
  return policy.allowedOrigins.includes(page.origin);
}
