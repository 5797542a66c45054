/**
 * A line chart as hand-written SVG (no dependency): latency against
 * connections, one polyline with point markers per series, linear axes with
 * round ticks, axis titles and a legend. Pure: figures in, SVG text out.
 */

export interface ChartPoint {
  x: number;
  /** null: not measured (the step failed); left out of the line. */
  y: number | null;
}

export interface ChartSeries {
  name: string;
  color: string;
  /** Dashed line (e.g. p50 under a solid p99). */
  dashed?: boolean;
  points: ChartPoint[];
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  width?: number;
  height?: number;
  /** A horizontal reference line (e.g. the p99 target), labelled. */
  target?: { y: number; label: string };
}

/** Text for SVG content and attribute values. */
export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

/** Round tick values from 0 to at least `max`: 1, 2, 2.5 or 5 × 10^k apart, about `count` of them. */
export function niceTicks(max: number, count = 5): number[] {
  if (!(max > 0) || !Number.isFinite(max)) return [0, 1];
  const rough = max / count;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= rough)!;
  const ticks: number[] = [];
  for (let i = 0; ; i++) {
    const v = Number((i * step).toPrecision(12));
    ticks.push(v);
    if (v >= max) break;
  }
  return ticks;
}

/** 1,000-style thousands; up to 2 decimals otherwise. */
export function formatTick(value: number): string {
  if (Number.isInteger(value)) return value.toLocaleString('en-US');
  return String(Number(value.toFixed(2)));
}

const fmt = (v: number) => String(Math.round(v * 10) / 10);

export function renderLineChartSvg(series: ChartSeries[], options: ChartOptions): string {
  const width = options.width ?? 780;
  const height = options.height ?? 440;
  const margin = { top: 48, right: 230, bottom: 64, left: 72 };
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;

  const xs = [...new Set(series.flatMap((s) => s.points.map((p) => p.x)))].sort((a, b) => a - b);
  const ys = series.flatMap((s) => s.points.flatMap((p) => (p.y === null || !Number.isFinite(p.y) ? [] : [p.y])));
  if (options.target) ys.push(options.target.y);
  const xTicks = niceTicks(Math.max(1, ...xs));
  const yTicks = niceTicks(Math.max(0, ...ys) * 1.05);
  const xMax = xTicks[xTicks.length - 1]!;
  const yMax = yTicks[yTicks.length - 1]!;
  const px = (x: number) => margin.left + (x / xMax) * plotW;
  const py = (y: number) => margin.top + plotH - (y / yMax) * plotH;

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<title>${escapeXml(options.title)}</title>`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(options.title)}</text>`,
  );

  // Grid and ticks.
  out.push('<g class="y-axis">');
  for (const t of yTicks) {
    const y = fmt(py(t));
    out.push(
      `<line x1="${margin.left}" y1="${y}" x2="${margin.left + plotW}" y2="${y}" stroke="#e0e0e0"/>`,
      `<text x="${margin.left - 8}" y="${y}" text-anchor="end" dominant-baseline="middle">${escapeXml(formatTick(t))}</text>`,
    );
  }
  out.push('</g>', '<g class="x-axis">');
  for (const t of xTicks) {
    const x = fmt(px(t));
    out.push(
      `<line x1="${x}" y1="${margin.top + plotH}" x2="${x}" y2="${margin.top + plotH + 5}" stroke="#333333"/>`,
      `<text x="${x}" y="${margin.top + plotH + 20}" text-anchor="middle">${escapeXml(formatTick(t))}</text>`,
    );
  }
  out.push('</g>');
  // Axes and their titles.
  out.push(
    `<line x1="${margin.left}" y1="${margin.top}" x2="${margin.left}" y2="${margin.top + plotH}" stroke="#333333"/>`,
    `<line x1="${margin.left}" y1="${margin.top + plotH}" x2="${margin.left + plotW}" y2="${margin.top + plotH}" stroke="#333333"/>`,
    `<text x="${margin.left + plotW / 2}" y="${height - 18}" text-anchor="middle" font-size="13">${escapeXml(options.xLabel)}</text>`,
    `<text x="18" y="${margin.top + plotH / 2}" text-anchor="middle" font-size="13" transform="rotate(-90 18 ${margin.top + plotH / 2})">${escapeXml(options.yLabel)}</text>`,
  );

  if (options.target && options.target.y <= yMax) {
    const y = fmt(py(options.target.y));
    out.push(
      `<line class="target" x1="${margin.left}" y1="${y}" x2="${margin.left + plotW}" y2="${y}" stroke="#c62828" stroke-dasharray="2 4"/>`,
      `<text x="${margin.left + plotW - 4}" y="${Number(y) - 6}" text-anchor="end" fill="#c62828">${escapeXml(options.target.label)}</text>`,
    );
  }

  // One polyline and its markers per series.
  for (const s of series) {
    const points = s.points.filter((p): p is { x: number; y: number } => p.y !== null && Number.isFinite(p.y)).sort((a, b) => a.x - b.x);
    const dash = s.dashed ? ' stroke-dasharray="6 4"' : '';
    out.push(`<g class="series" data-name="${escapeXml(s.name)}">`);
    out.push(`<polyline fill="none" stroke="${escapeXml(s.color)}" stroke-width="2"${dash} points="${points.map((p) => `${fmt(px(p.x))},${fmt(py(p.y))}`).join(' ')}"/>`);
    for (const p of points) {
      out.push(`<circle cx="${fmt(px(p.x))}" cy="${fmt(py(p.y))}" r="3.5" fill="${escapeXml(s.color)}"><title>${escapeXml(`${s.name}: ${formatTick(p.x)} → ${formatTick(p.y)}`)}</title></circle>`);
    }
    out.push('</g>');
  }

  // Legend, right of the plot.
  const lx = margin.left + plotW + 20;
  out.push('<g class="legend">');
  series.forEach((s, i) => {
    const y = margin.top + 10 + i * 22;
    const dash = s.dashed ? ' stroke-dasharray="6 4"' : '';
    out.push(
      `<line x1="${lx}" y1="${y}" x2="${lx + 28}" y2="${y}" stroke="${escapeXml(s.color)}" stroke-width="2"${dash}/>`,
      `<text x="${lx + 36}" y="${y}" dominant-baseline="middle">${escapeXml(s.name)}</text>`,
    );
  });
  out.push('</g>', '</svg>');
  return `${out.join('\n')}\n`;
}
