import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { WEB_ROOT, withPartials } from '../src/web/web-assets.js';

const dir = mkdtempSync(join(tmpdir(), 'clinic-partials-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('withPartials', () => {
  it('replaces an include line by the partial, each line indented as the include was', () => {
    writeFileSync(join(dir, 'head.html'), '<meta charset="utf-8" />\n\n<link rel="icon" href="/favicon.svg" />\n');
    const page = '<head>\n    <!--#include file="head.html" -->\n    <title>T</title>\n</head>\n';
    expect(withPartials(page, dir)).toBe('<head>\n    <meta charset="utf-8" />\n    <link rel="icon" href="/favicon.svg" />\n    <title>T</title>\n</head>\n');
  });

  it('leaves a page without include lines as it is', () => {
    const page = '<head>\n  <!-- a comment -->\n  <title>T</title>\n</head>\n';
    expect(withPartials(page, dir)).toBe(page);
  });

  it('throws on an include of a partial that is not there', () => {
    expect(() => withPartials('<!--#include file="gone.html" -->\n', dir)).toThrow(/gone\.html/);
  });

  it('leaves no include line in any page of web/public: each names a partial that exists', () => {
    const publicDir = join(WEB_ROOT, 'public');
    for (const file of readdirSync(publicDir).filter((name) => name.endsWith('.html'))) {
      const page = withPartials(readFileSync(join(publicDir, file), 'utf8'), join(WEB_ROOT, 'partials'));
      expect(page, file).not.toContain('<!--#include');
      expect(page, file).toMatch(/<meta charset="utf-8" \/>/);
    }
  });
});
