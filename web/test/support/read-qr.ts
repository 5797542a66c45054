import type { Page } from 'playwright-core';
import * as jsQRModule from 'jsqr';
import { PNG } from 'pngjs';

/** The text in the QR code drawn by an element: a screenshot of it, read by jsQR as a phone camera would. */
export async function readQr(page: Page, selector: string): Promise<string | null> {
  const png = PNG.sync.read(await page.locator(selector).screenshot());
  const jsQR = ((jsQRModule as unknown as { default?: unknown }).default ?? jsQRModule) as unknown as (data: Uint8ClampedArray, width: number, height: number) => { data: string } | null;
  return jsQR(new Uint8ClampedArray(png.data.buffer, png.data.byteOffset, png.data.length), png.width, png.height)?.data ?? null;
}
