import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

const VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * AES-256-GCM for attachments at rest. A sealed blob is
 * `version (1 byte) | IV (12) | tag (16) | ciphertext`, with a fresh random IV
 * per blob. The additional data binds a blob to where it belongs (clinic,
 * thread, attachment id): a blob copied under another attachment's key does
 * not decrypt.
 */
export class AttachmentCipher {
  constructor(private readonly key: Buffer) {
    if (key.length !== 32) throw new Error('an AES-256 key is 32 bytes');
  }

  seal(plain: Buffer, additionalData: string): Buffer {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(additionalData, 'utf8'));
    const ciphertext = Buffer.concat([cipher.update(plain), cipher.final()]);
    return Buffer.concat([Buffer.from([VERSION]), iv, cipher.getAuthTag(), ciphertext]);
  }

  /** Throws when the blob was not sealed with this key and additional data, or was changed. */
  open(sealed: Buffer, additionalData: string): Buffer {
    if (sealed.length < 1 + IV_BYTES + TAG_BYTES || sealed[0] !== VERSION) throw new Error('not a sealed attachment');
    const iv = sealed.subarray(1, 1 + IV_BYTES);
    const tag = sealed.subarray(1 + IV_BYTES, 1 + IV_BYTES + TAG_BYTES);
    const decipher = createDecipheriv('aes-256-gcm', this.key, iv);
    decipher.setAAD(Buffer.from(additionalData, 'utf8'));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(sealed.subarray(1 + IV_BYTES + TAG_BYTES)), decipher.final()]);
  }
}

export function attachmentAdditionalData(clinic: string, threadId: string, attachmentId: string): string {
  return `clinic-hub/chat-attachment/v${VERSION}/${clinic}/${threadId}/${attachmentId}`;
}
