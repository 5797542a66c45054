/**
 * Changes made to mediasoup's own worker sources before they are compiled
 * (README.md beside this file, "The patch"). Each is an exact text
 * replacement that must match once: if a new mediasoup version changes the
 * code around it, the build stops and says so instead of compiling unpatched.
 */
export interface SourcePatch {
  /** Relative to the package's worker/ folder. */
  file: string;
  find: string;
  replace: string;
  why: string;
}

export const SOURCE_PATCHES: readonly SourcePatch[] = [
  {
    file: 'src/RTC/DtlsTransport.cpp',
    find: 'const long resultOfcallback = (operationType == BIO_CB_RETURN) ? static_cast<long>(ret) : 1;',
    replace:
      '// clinic-hub patch: BIO_CB_RETURN is a bit OR-ed into the operation (BIO_CB_CTRL | BIO_CB_RETURN),\n' +
      '\t// never the whole value; testing it with == turned every ctrl answer into 1, so\n' +
      '\t// BIO_get_ktls_send() read true with a kernel-TLS OpenSSL and the worker crashed.\n' +
      '\tconst long resultOfcallback = (operationType & BIO_CB_RETURN) ? static_cast<long>(ret) : 1;',
    why:
      "The BIO callback's return value must be OpenSSL's own result for the return leg of every operation. " +
      'With Debian\'s OpenSSL (built with kernel TLS) BIO_get_ktls_send() otherwise reads 1, OpenSSL never ' +
      'allocates its write buffer, and the worker dies of SIGSEGV on the first DTLS handshake.',
  },
];

export class PatchError extends Error {
  readonly code = 'MEDIASOUP_BUILD_PATCH_MISMATCH';
}

/** The patched text of one file; throws when the text to replace is not there exactly once. */
export function applyPatch(patch: SourcePatch, text: string): string {
  const first = text.indexOf(patch.find);
  if (first === -1 || text.indexOf(patch.find, first + 1) !== -1) {
    throw new PatchError(
      `${patch.file}: the code this build patches is ${first === -1 ? 'not there' : 'there more than once'} ` +
        '(a different mediasoup version?): see media-server/worker-build/README.md, "The patch"',
    );
  }
  return text.slice(0, first) + patch.replace + text.slice(first + patch.find.length);
}
