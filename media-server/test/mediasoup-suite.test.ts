import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { installedMediasoupDir } from '../src/mediasoup-worker-bin.js';
import { builtWorkerBin } from './support/mediasoup-worker.js';

/**
 * mediasoup's own Node test suite (compiled, in the npm package under
 * node/lib/test), run by jest 30 against the worker this project built: a
 * wrong adapter (libsrtp, unordered_dense) or a bad build fails here. The
 * package does not ship the DTLS certificate and key two of its tests load
 * (node/lib/test/data/): they are made with openssl when missing.
 */
const mediasoupDir = installedMediasoupDir();
const testDir = join(mediasoupDir, 'node', 'lib', 'test');
const scratch = mkdtempSync(join(tmpdir(), 'mediasoup-suite-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Makes node/lib/test/data/dtls-{cert,key}.pem once; written beside and renamed, so concurrent runs never read half a file. */
function ensureDtlsFiles(): void {
  const dataDir = join(testDir, 'data');
  const cert = join(dataDir, 'dtls-cert.pem');
  const key = join(dataDir, 'dtls-key.pem');
  if (existsSync(cert) && existsSync(key)) return;
  mkdirSync(dataDir, { recursive: true });
  const made = spawnSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '3650', '-subj', '/CN=mediasoup-test', '-keyout', join(scratch, 'key.pem'), '-out', join(scratch, 'cert.pem')],
    { encoding: 'utf8' },
  );
  if (made.status !== 0) throw new Error(`openssl could not make the DTLS test certificate: ${made.stderr}`);
  renameSync(join(scratch, 'key.pem'), key);
  renameSync(join(scratch, 'cert.pem'), cert);
}

interface JestResult {
  numTotalTests: number;
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests: number;
  numTodoTests: number;
  testResults: { name: string; status: string; message: string; assertionResults: { fullName: string; status: string; failureMessages: string[] }[] }[];
}

function runJest(workerBin: string): Promise<{ result: JestResult | null; output: string; code: number | null }> {
  const jestBin = createRequire(import.meta.url).resolve('jest/bin/jest');
  const outputFile = join(scratch, 'jest.json');
  const config = {
    rootDir: mediasoupDir,
    testMatch: ['<rootDir>/node/lib/test/test-*.js'],
    // The suite lives inside node_modules, which jest skips by default (in its test paths and its file map).
    testPathIgnorePatterns: [],
    haste: { retainAllFiles: true },
    // Compiled JavaScript: nothing to transform.
    transform: {},
    testEnvironment: 'node',
    cacheDirectory: join(scratch, 'jest-cache'),
  };
  return new Promise((resolvePromise) => {
    const child = spawn(
      process.execPath,
      [jestBin, '--config', JSON.stringify(config), '--runInBand', '--ci', '--no-watchman', '--json', '--outputFile', outputFile],
      { cwd: mediasoupDir, env: { ...process.env, MEDIASOUP_WORKER_BIN: workerBin, DEBUG: '' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('close', (code) => {
      const result = existsSync(outputFile) ? (JSON.parse(readFileSync(outputFile, 'utf8')) as JestResult) : null;
      resolvePromise({ result, output, code });
    });
  });
}

describe("mediasoup's own test suite against our mediasoup-worker", () => {
  it('passes every test', { timeout: 600_000 }, async () => {
    const workerBin = builtWorkerBin();
    ensureDtlsFiles();
    const started = performance.now();
    const { result, output, code } = await runJest(workerBin);
    if (result === null) throw new Error(`jest wrote no result (exit ${code}):\n${output.slice(-4000)}`);
    const failed = result.testResults.flatMap((file) =>
      file.assertionResults.filter((test) => test.status === 'failed').map((test) => `${test.fullName}\n${test.failureMessages.join('\n').slice(0, 1500)}`),
    );
    const brokenFiles = result.testResults.filter((file) => file.status === 'failed' && file.assertionResults.length === 0).map((file) => `${file.name}: ${file.message.slice(0, 1500)}`);
    process.stdout.write(
      `mediasoup suite (jest, ${result.testResults.length} files, ${((performance.now() - started) / 1000).toFixed(1)} s, worker ${workerBin}): ` +
        `${result.numPassedTests} passed, ${result.numFailedTests} failed, ${result.numPendingTests} skipped of ${result.numTotalTests}\n`,
    );
    expect([...brokenFiles, ...failed]).toEqual([]);
    expect(result.numFailedTests).toBe(0);
    expect(result.numPendingTests + result.numTodoTests).toBe(0);
    // mediasoup 3.27.1 has 202 tests in 17 files: far fewer means files were not found or not run.
    expect(result.testResults.length).toBeGreaterThanOrEqual(17);
    expect(result.numPassedTests).toBeGreaterThanOrEqual(200);
    expect(code).toBe(0);
  });
});
