import { describe, expect, it } from 'vitest';
import { latencyChartSvg, type RampStep, type StepSide } from '../harness/bench-all.js';
import { escapeXml, formatTick, niceTicks, renderLineChartSvg } from '../harness/chart.js';
import { xmlProblems } from './support/xml-well-formed.js';

const polylines = (svg: string) => [...svg.matchAll(/<polyline [^>]*points="([^"]*)"/g)].map((m) => (m[1] === '' ? [] : m[1]!.split(' ')));

describe('renderLineChartSvg', () => {
  const svg = renderLineChartSvg(
    [
      { name: 'a p99', color: '#123456', points: [{ x: 500, y: 12 }, { x: 1000, y: 20 }, { x: 2000, y: 48.5 }] },
      { name: 'b <p50> & co', color: '#654321', dashed: true, points: [{ x: 500, y: 3 }, { x: 1000, y: null }, { x: 2000, y: 9 }] },
    ],
    { title: 'Latency', xLabel: 'connected displays', yLabel: 'latency (ms)', target: { y: 100, label: 'target p99 < 100 ms' } },
  );

  it('is well-formed XML with one polyline per series and one marker per measured point', () => {
    expect(xmlProblems(svg)).toEqual([]);
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    const lines = polylines(svg);
    expect(lines.map((l) => l.length)).toEqual([3, 2]);
    expect(svg.match(/<circle /g)).toHaveLength(5);
    expect(svg).toContain('stroke-dasharray="6 4"');
  });

  it('has axis titles, round tick labels, a legend entry per series and the target line', () => {
    expect(svg).toContain('>connected displays</text>');
    expect(svg).toContain('>latency (ms)</text>');
    for (const tick of ['0', '500', '1,000', '1,500', '2,000']) expect(svg).toContain(`>${tick}</text>`);
    for (const tick of ['0', '25', '50', '75', '100']) expect(svg).toContain(`>${tick}</text>`);
    expect(svg).toContain('>a p99</text>');
    expect(svg).toContain('>b &lt;p50&gt; &amp; co</text>');
    expect(svg).toContain('>target p99 &lt; 100 ms</text>');
  });

  it('puts larger values higher and further right', () => {
    const [a] = polylines(svg);
    const pts = a!.map((p) => p.split(',').map(Number) as [number, number]);
    expect(pts[0]![0]).toBeLessThan(pts[1]![0]);
    expect(pts[1]![0]).toBeLessThan(pts[2]![0]);
    // SVG y grows downwards.
    expect(pts[0]![1]).toBeGreaterThan(pts[2]![1]);
  });
});

describe('chart helpers', () => {
  it('makes round ticks that cover the maximum', () => {
    expect(niceTicks(2000)).toEqual([0, 500, 1000, 1500, 2000]);
    expect(niceTicks(47)).toEqual([0, 10, 20, 30, 40, 50]);
    expect(niceTicks(0)).toEqual([0, 1]);
    expect(niceTicks(0.3).at(-1)).toBeGreaterThanOrEqual(0.3);
    expect(formatTick(5000)).toBe('5,000');
    expect(formatTick(0.25)).toBe('0.25');
    expect(escapeXml(`<a & "b">`)).toBe('&lt;a &amp; &quot;b&quot;&gt;');
  });
});

describe('latencyChartSvg', () => {
  const side = (server: 'uws' | 'node', p50: number | null, p99: number | null) => ({ server, p50_ms: p50, p99_ms: p99 }) as StepSide;
  it('draws p99 and p50 for uws and node, one point per step', () => {
    const steps: RampStep[] = [500, 1000, 2000, 5000].map((clients, i) => ({
      clients,
      uws: side('uws', 5 + i, 10 + i * 5),
      node: side('node', 8 + i, i === 3 ? null : 20 + i * 10),
      p99_ratio_node_over_uws: null,
    }));
    const svg = latencyChartSvg(steps, 100);
    expect(xmlProblems(svg)).toEqual([]);
    expect(polylines(svg).map((l) => l.length)).toEqual([4, 4, 3, 4]);
    for (const name of ['uWebSockets.js p99', 'uWebSockets.js p50', 'Node HTTP + ws p99', 'Node HTTP + ws p50']) expect(svg).toContain(`>${name}</text>`);
    expect(svg).toContain('>5,000</text>');
  });

  it('leaves out a server kind that was not run', () => {
    const steps: RampStep[] = [{ clients: 50, uws: side('uws', 1, 2), node: null, p99_ratio_node_over_uws: null }];
    expect(polylines(latencyChartSvg(steps))).toHaveLength(2);
  });
});

describe('xmlProblems', () => {
  it('finds what is not well-formed', () => {
    expect(xmlProblems('<svg><g></svg>')).not.toEqual([]);
    expect(xmlProblems('<svg><text>a & b</text></svg>')).not.toEqual([]);
    expect(xmlProblems('<svg a="1" a="2"/>')).not.toEqual([]);
    expect(xmlProblems('<svg/><svg/>')).not.toEqual([]);
    expect(xmlProblems('<svg><text x="1">a &amp; b</text><g/></svg>')).toEqual([]);
  });
});
