import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, TEST_CLINICS_DIR, TEST_SECRET, testTokens } from '@clinic-hub/test-kit/hub-node';

/** `npm run token` (hub/src/auth/issue-token-cli.ts), as an operator runs it on a hub's machine. */
function issue(...args: string[]) {
  const run = spawnSync(process.execPath, ['--import', 'tsx', resolve(REPO_ROOT, 'hub/src/auth/issue-token-cli.ts'), ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, HUB_TOKEN_SECRET: TEST_SECRET, CLINICS_DIR: TEST_CLINICS_DIR },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

describe('npm run token', () => {
  it('issues a token for a clinic the hub serves, and an all-clinics admin token', () => {
    const staff = issue('--role', 'staff', '--clinic', 'testclinic', '--json');
    expect(staff.status, staff.stderr).toBe(0);
    const issued = JSON.parse(staff.stdout) as { token: string; clinic: string };
    expect(testTokens.verifySync(issued.token)).toMatchObject({ role: 'staff', clinic: 'testclinic' });
    const admin = issue('--role', 'admin', '--clinic', '*');
    expect(admin.status, admin.stderr).toBe(0);
    expect(testTokens.verifySync(admin.stdout.trim())).toMatchObject({ role: 'admin', clinic: '*' });
  });

  it('refuses a clinic that is not configured, as POST /api/tokens does (CLINIC_NOT_FOUND)', () => {
    const ghost = issue('--role', 'staff', '--clinic', 'ghostclinic');
    expect(ghost.status).toBe(2);
    expect(ghost.stdout).toBe('');
    expect(ghost.stderr).toMatch(/CLINIC_NOT_FOUND: no clinic "ghostclinic"/);
    expect(ghost.stderr).toMatch(/testclinic/);
  });
});
