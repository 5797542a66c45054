import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkFloors, describeViolation, isTestFile, missingExports } from './floors.js';

describe('the floors (docs/architecture.md)', () => {
  const violations = checkFloors();

  it('every import keeps to its floor, stays out of other workspaces\' src/ and test/, and is declared', () => {
    expect(violations.map(describeViolation), 'import by package name and an exported subpath; see docs/architecture.md').toEqual([]);
  });

  it('every file a package.json exports exists', () => {
    expect(missingExports()).toEqual([]);
  });

  it('catches each kind of breach (the check itself can fail)', () => {
    const repo = mkdtempSync(join(tmpdir(), 'floors-'));
    try {
      const write = (path: string, text: string) => {
        mkdirSync(dirname(join(repo, path)), { recursive: true });
        writeFileSync(join(repo, path), text);
      };
      const pkg = (name: string, exports: Record<string, string>, dependencies: string[] = []) =>
        JSON.stringify({ name: `@clinic-hub/${name}`, exports, dependencies: Object.fromEntries(dependencies.map((d) => [`@clinic-hub/${d}`, '0.1.0'])) });
      write('package.json', JSON.stringify({ name: 'clinic-hub', workspaces: ['protocol', 'platform', 'hub', 'media-server', 'test-kit'] }));
      write('protocol/package.json', pkg('protocol', { '.': './src/index.ts' }));
      write('platform/package.json', pkg('platform', { './tokens': './src/tokens.ts', './token-issuer': './src/issuer.ts' }, ['protocol', 'hub']));
      write('hub/package.json', pkg('hub', { '.': './src/index.ts' }, ['protocol', 'platform']));
      write('media-server/package.json', pkg('media-server', { '.': './src/index.ts' }, ['platform', 'test-kit']));
      write('test-kit/package.json', pkg('test-kit', { './*': './src/*.ts' }, ['platform']));
      // Built from parts, so that this file's own imports are only its real ones.
      const imp = (spec: string, names = 'x') => `import { ${names} } from '${spec}';\n`;
      const files: Record<string, string> = {
        'hub/src/fine.ts': imp('@clinic-hub/protocol') + imp('./local.js') + imp('@clinic-hub/platform/token-issuer', 'TokenIssuer'),
        'media-server/src/relative.ts': imp('../../hub/src/queue.js'),
        'media-server/src/into-src.ts': imp('@clinic-hub/platform/src/redis.js'),
        'media-server/src/undeclared.ts': imp('@clinic-hub/protocol'),
        'media-server/src/sibling.ts': imp('@clinic-hub/hub'),
        'media-server/src/issuer.ts': imp('@clinic-hub/platform/token-issuer', 'TokenIssuer'),
        'media-server/src/kit.ts': imp('@clinic-hub/test-kit/redis', 'startTestRedis'),
        'media-server/test/kit.test.ts': imp('@clinic-hub/test-kit/redis', 'startTestRedis'),
        'platform/src/up.ts': `const hub = await import('${'@clinic-hub/hub'}');\n`,
        'platform/src/comment.ts': `// ${imp('../../hub/src/queue.js')}`,
      };
      for (const [path, text] of Object.entries(files)) write(path, text);
      const found = checkFloors(repo, Object.keys(files)).map((v) => `${v.file}: ${v.rule}`);
      const expectRule = (file: string, rule: RegExp) => expect(found.filter((f) => f.startsWith(`${file}:`)).some((f) => rule.test(f)), `${file} in ${found.join('\n')}`).toBe(true);
      expectRule('media-server/src/relative.ts', /relative import into another workspace \(hub\)/);
      expectRule('media-server/src/into-src.ts', /reaches into platform's src/);
      expectRule('media-server/src/undeclared.ts', /@clinic-hub\/protocol is not declared in media-server\/package.json/);
      expectRule('media-server/src/sibling.ts', /side by side/);
      expectRule('media-server/src/issuer.ts', /only the hub issues tokens/);
      expectRule('media-server/src/kit.ts', /product code imports test-kit/);
      expectRule('platform/src/up.ts', /runs back up the floors: platform \(floor 1\) imports hub \(floor 2\)/);
      expect(found.filter((f) => /^(hub\/src\/fine|media-server\/test\/kit|platform\/src\/comment)/.test(f))).toEqual([]);
    } finally {
      rmSync(repo, { recursive: true, force: true });
    }
    expect(isTestFile('hub/test/support/redis.ts')).toBe(true);
    expect(isTestFile('hub/src/queue/queue-service.test.ts')).toBe(true);
    expect(isTestFile('hub/src/queue/queue-service.ts')).toBe(false);
  });
});
