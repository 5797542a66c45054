import { randomBytes } from 'node:crypto';

/**
 * A random URL-safe id (base64url of `bytes` random bytes) that never begins with "-", so staff can pass it
 * as a command-line argument (`clinic skip <id>`) without it being read as an option.
 * Redrawing keeps every id uniform over the ids allowed.
 */
export function newOpaqueId(bytes: number): string {
  for (;;) {
    const id = randomBytes(bytes).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}
