/**
 * Which simulcast layer a subscriber's tile needs. Cameras send three
 * spatial layers, each half the height of the next (scaleResolutionDownBy
 * 4, 2, 1: for a 720p camera 180, 360 and 720 lines). The SFU sends no layer
 * higher than the tile shows; within that ceiling mediasoup's bandwidth
 * estimate for the subscriber picks the layer its downlink carries.
 */

/** Tile heights (CSS pixels, as the page reports them) up to which layer 0, then 1, suffice; above: the top layer. */
export const LAYER_TILE_HEIGHTS = [200, 400] as const;

export function preferredSpatialLayer(width: number, height: number, layers: number): number {
  const top = Math.max(0, layers - 1);
  if (width === 0 || height === 0) return 0;
  let layer = LAYER_TILE_HEIGHTS.findIndex((limit) => height <= limit);
  if (layer === -1) layer = top;
  return Math.min(layer, top);
}

/** When the downlink cannot carry everything, larger tiles keep their layers first (mediasoup's consumer priority, 1–255). */
export function tilePriority(width: number, height: number): number {
  const area = width * height;
  return Math.max(1, Math.min(255, Math.round(area / 4000)));
}
