/**
 * A QR code as an inline SVG, built as DOM nodes (no markup strings): one
 * path of dark modules on a white square with the quiet zone the standard
 * asks for (4 modules), readable by any phone camera on screen and on paper.
 */
import QRCode from 'qrcode';

const SVG_NS = 'http://www.w3.org/2000/svg';
const QUIET_ZONE = 4;

export function qrSvg(text: string, label: string): SVGSVGElement {
  const { modules } = QRCode.create(text, { errorCorrectionLevel: 'M' });
  const size = modules.size + QUIET_ZONE * 2;
  let d = '';
  for (let row = 0; row < modules.size; row++) {
    for (let col = 0; col < modules.size; col++) {
      if (modules.get(row, col)) d += `M${col + QUIET_ZONE} ${row + QUIET_ZONE}h1v1h-1z`;
    }
  }
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('viewBox', `0 0 ${size} ${size}`);
  svg.setAttribute('class', 'qr');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', label);
  svg.setAttribute('shape-rendering', 'crispEdges');
  // Pages size a code by its module count (whole pixels per module read best):
  // a patient link with its session claims is about 93 modules wide.
  svg.style.setProperty('--qr-modules', String(size));
  const background = document.createElementNS(SVG_NS, 'rect');
  background.setAttribute('width', String(size));
  background.setAttribute('height', String(size));
  background.setAttribute('fill', '#fff');
  const path = document.createElementNS(SVG_NS, 'path');
  path.setAttribute('d', d);
  path.setAttribute('fill', '#000');
  svg.append(background, path);
  return svg;
}
