import type { ChatAttachmentType } from '@clinic-hub/protocol';

const startsWith = (bytes: Buffer, signature: number[], offset = 0) =>
  bytes.length >= offset + signature.length && signature.every((byte, i) => bytes[offset + i] === byte);

const ascii = (text: string) => [...text].map((c) => c.charCodeAt(0));

/**
 * The attachment type the bytes themselves say, from their signature ("magic
 * bytes"), or null for anything else: a client's Content-Type is a claim,
 * this is the check. An HTML page or an executable labelled image/png is null.
 */
export function sniffAttachmentType(bytes: Buffer): ChatAttachmentType | null {
  if (startsWith(bytes, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'image/png';
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return 'image/jpeg';
  if (startsWith(bytes, ascii('RIFF')) && startsWith(bytes, ascii('WEBP'), 8)) return 'image/webp';
  if (startsWith(bytes, ascii('%PDF-'))) return 'application/pdf';
  return null;
}

const EXTENSIONS: Record<ChatAttachmentType, string> = {
  'image/png': 'png',
  'image/jpeg': 'jpg',
  'image/webp': 'webp',
  'application/pdf': 'pdf',
};

/**
 * A file name fit to show and to offer in a download: no directories, no
 * control or quoting characters, at most 120 characters, and an extension
 * that matches the type.
 */
export function cleanFileName(name: string | null | undefined, type: ChatAttachmentType): string {
  const base = (name ?? '').split(/[\\/]/).pop() ?? '';
  const cleaned = base.replace(/[\u0000-\u001f\u007f"<>|:*?]/g, '').trim().slice(0, 120);
  const extension = EXTENSIONS[type];
  if (!cleaned || cleaned.startsWith('.')) return `attachment.${extension}`;
  const hasExtension = new RegExp(`\\.${extension === 'jpg' ? '(jpe?g)' : extension}$`, 'i').test(cleaned);
  return hasExtension ? cleaned : `${cleaned}.${extension}`;
}
