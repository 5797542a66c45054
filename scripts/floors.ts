/**
 * The floors of the repository (docs/architecture.md), checked on every
 * import of every source file: `npm run floors` lists what breaks them,
 * scripts/floors.test.ts fails on it in `npm test`.
 *
 *   3  cli, load-tests                     (use everything below)
 *   2  hub, media-server, ai-workers, web  (side by side: product code never imports a sibling)
 *   1  platform, recordings                (what every service shares; recordings use the platform)
 *   0  protocol                            (the contract)
 *
 * test-kit (the helpers that tests of several workspaces share) stands
 * beside the floors: it may use any workspace through its exports, and only
 * tests and the load tests may use it; product code never does.
 *
 * The rules, each a message below:
 * - a relative import stays inside its own workspace;
 * - another workspace is imported by its package name and a subpath its
 *   package.json exports, never by its src/ or test/;
 * - the workspace imported is declared in the importer's package.json;
 * - product code imports only floors below its own (never up, never a
 *   sibling); a test may also drive a sibling through its exports;
 * - only the hub's product code signs tokens (`@clinic-hub/platform/token-issuer`).
 */
import { existsSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { dirname, join, normalize, relative, resolve } from 'node:path';

export const REPO_ROOT = resolve(import.meta.dirname, '..');

export const FLOORS: Record<string, number> = {
  protocol: 0,
  platform: 1,
  // Recordings stand on the platform (its configuration helpers): a half floor above it.
  recordings: 1.5,
  hub: 2,
  'media-server': 2,
  'ai-workers': 2,
  web: 2,
  cli: 3,
  'load-tests': 3,
  // The repository's own scripts (npm start, this check) stand on top.
  '.': 4,
};
/** Beside the floors: tests' helpers. */
export const TEST_KIT = 'test-kit';
const SCOPE = '@clinic-hub/';

/**
 * Imports that break a rule for a reason that outlives any clean-up, each
 * with that reason.
 */
const EXCEPTIONS: { file: RegExp; specifier: RegExp; why: string }[] = [
  {
    file: /^load-tests\/k6\//,
    specifier: /^(\.\.\/)+protocol\/src\/[\w-]+\.ts$/,
    why: 'k6 runs these scripts in your own infrastructure and resolves no npm packages: they import the protocol by path',
  },
];

export interface Violation {
  file: string;
  line: number;
  specifier: string;
  rule: string;
}

interface Workspace {
  name: string;
  dir: string;
  packageName: string;
  exports: Set<string>;
  declared: Set<string>;
}

function loadWorkspaces(repo: string): Map<string, Workspace> {
  const root = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { workspaces: string[] };
  const workspaces = new Map<string, Workspace>();
  for (const dir of ['.', ...root.workspaces]) {
    const pkg = JSON.parse(readFileSync(join(repo, dir, 'package.json'), 'utf8')) as {
      name: string;
      exports?: Record<string, string>;
      dependencies?: Record<string, string>;
      devDependencies?: Record<string, string>;
    };
    workspaces.set(dir, {
      name: dir,
      dir,
      packageName: pkg.name,
      exports: new Set(Object.keys(pkg.exports ?? {})),
      declared: new Set([...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.devDependencies ?? {})]),
    });
  }
  return workspaces;
}

/** The workspace a repository path belongs to ('.' for the root's own files). */
function workspaceOf(path: string, workspaces: Map<string, Workspace>): string {
  const first = path.split('/')[0]!;
  return workspaces.has(first) && first !== '.' ? first : '.';
}

/** Tests and their helpers: what may use test-kit and drive siblings. */
export function isTestFile(path: string): boolean {
  return /(^|\/)test\//.test(path) || /\.test\.tsx?$/.test(path) || path.startsWith(`${TEST_KIT}/`);
}

const IMPORT = /(?:^|[\s;])(?:import|export)\s+(?:type\s+)?(?:[\w*${}\s,]+?\s+from\s+)?['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

function importsOf(text: string): { specifier: string; line: number }[] {
  const found: { specifier: string; line: number }[] = [];
  // Comments may quote import lines (docs, examples): leave them out.
  const code = text.replace(/\/\*[\s\S]*?\*\//g, (c) => c.replace(/[^\n]/g, ' ')).replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
  for (const match of code.matchAll(IMPORT)) {
    const specifier = match[1] ?? match[2]!;
    found.push({ specifier, line: code.slice(0, match.index).split('\n').length });
  }
  return found;
}

export function sourceFiles(repo = REPO_ROOT): string[] {
  const listed = execFileSync('git', ['ls-files', '-co', '--exclude-standard', '--', '*.ts', '*.tsx', '*.mts', '*.js', '*.mjs'], {
    cwd: repo,
    encoding: 'utf8',
  });
  return listed
    .split('\n')
    .filter((path) => path && !path.includes('node_modules/') && existsSync(join(repo, path)));
}

export function checkFloors(repo = REPO_ROOT, files = sourceFiles(repo)): Violation[] {
  const workspaces = loadWorkspaces(repo);
  const byPackage = new Map([...workspaces.values()].map((w) => [w.packageName, w]));
  const violations: Violation[] = [];
  for (const file of files) {
    const from = workspaceOf(file, workspaces);
    const fromWorkspace = workspaces.get(from)!;
    const test = isTestFile(file);
    for (const { specifier, line } of importsOf(readFileSync(join(repo, file), 'utf8'))) {
      if (EXCEPTIONS.some((e) => e.file.test(file) && e.specifier.test(specifier))) continue;
      const fail = (rule: string) => violations.push({ file, line, specifier, rule });
      if (specifier.startsWith('.')) {
        const target = normalize(join(dirname(file), specifier));
        if (target.startsWith('..')) fail('a relative import leaves the repository');
        else if (workspaceOf(target, workspaces) !== from) {
          fail(`a relative import into another workspace (${workspaceOf(target, workspaces)}): import it by its package name and an exported subpath`);
        }
        continue;
      }
      if (!specifier.startsWith(SCOPE)) continue;
      const [, name, ...rest] = specifier.split('/');
      const target = byPackage.get(`${SCOPE}${name}`);
      if (!target) {
        fail(`no workspace is named ${SCOPE}${name}`);
        continue;
      }
      const subpath = rest.length > 0 ? `./${rest.join('/')}` : '.';
      if (target.name === from) {
        fail('a workspace imports its own files by relative path, not by its package name');
        continue;
      }
      if (/(^|\/)(src|test)(\/|$)/.test(subpath)) fail(`reaches into ${target.name}'s ${subpath.includes('test') ? 'test' : 'src'}/: import an exported subpath instead`);
      else if (!exported(target.exports, subpath)) fail(`${target.name} does not export "${subpath}" (its package.json "exports")`);
      if (!fromWorkspace.declared.has(target.packageName)) fail(`${target.packageName} is not declared in ${from === '.' ? '' : `${from}/`}package.json`);
      const targetIsKit = target.name === TEST_KIT;
      if (targetIsKit) {
        if (!test && from !== 'load-tests') fail('product code imports test-kit: only tests (and the load tests) may');
        continue;
      }
      if (from === TEST_KIT) continue;
      const up = FLOORS[from]!;
      const down = FLOORS[target.name];
      if (down === undefined) fail(`${target.name} has no floor (scripts/floors.ts FLOORS)`);
      else if (down > up) fail(`runs back up the floors: ${from} (floor ${up}) imports ${target.name} (floor ${down})`);
      else if (down === up && !test) fail(`${from} and ${target.name} stand side by side (floor ${up}): product code never imports a sibling`);
      if (specifier === `${SCOPE}platform/token-issuer` && !test && from !== 'hub' && FLOORS[from]! <= 2) {
        fail('only the hub issues tokens: import @clinic-hub/platform/tokens to verify them');
      }
    }
  }
  for (const w of workspaces.values()) {
    if (w.name !== '.' && FLOORS[w.name] === undefined && w.name !== TEST_KIT) {
      violations.push({ file: `${w.name}/package.json`, line: 1, specifier: '', rule: 'a workspace without a floor (scripts/floors.ts FLOORS)' });
    }
  }
  return violations;
}

function exported(exports: Set<string>, subpath: string): boolean {
  if (exports.has(subpath)) return true;
  for (const pattern of exports) {
    const star = pattern.indexOf('*');
    if (star >= 0 && subpath.startsWith(pattern.slice(0, star)) && subpath.endsWith(pattern.slice(star + 1))) return true;
  }
  return false;
}

/** Every file a workspace's package.json exports exists. */
export function missingExports(repo = REPO_ROOT): string[] {
  const missing: string[] = [];
  for (const w of loadWorkspaces(repo).values()) {
    const pkg = JSON.parse(readFileSync(join(repo, w.dir, 'package.json'), 'utf8')) as { exports?: Record<string, string> };
    for (const [subpath, target] of Object.entries(pkg.exports ?? {})) {
      if (target.includes('*')) continue;
      if (!existsSync(join(repo, w.dir, target))) missing.push(`${w.packageName} "${subpath}": ${target}`);
    }
  }
  return missing;
}

export function describeViolation(v: Violation): string {
  return `${v.file}:${v.line} '${v.specifier}': ${v.rule}`;
}

if (relative(process.argv[1] ?? '', import.meta.filename) === '') {
  const violations = checkFloors();
  for (const v of violations) console.log(describeViolation(v));
  for (const m of missingExports()) console.log(`missing export target: ${m}`);
  console.log(violations.length === 0 ? 'floors: every import keeps to its floor' : `floors: ${violations.length} imports break the floors`);
  process.exitCode = violations.length === 0 ? 0 : 1;
}
