/**
 * The orchestrator's own contract: `services:up` starts all four services, a second `up` reuses
 * them, and `services:down` leaves no process and no temporary directory behind. Runs a separate
 * set of services (own state directory, no endpoint overrides) beside the one the suite uses.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const cli = path.resolve('test/services/cli.mjs');
const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pg-cdc-lifecycle-'));
const childEnv: NodeJS.ProcessEnv = { ...process.env, PG_CDC_SERVICES_STATE_DIR: stateDir };
for (const name of ['PGHOST', 'PGPORT', 'KAFKA_BROKERS', 'ELASTICSEARCH_URL', 'AZURE_STORAGE_CONNECTION_STRING']) delete childEnv[name];

interface State {
  workDir: string;
  services: Record<string, { pid: number }>;
}
const readState = (): State => JSON.parse(fs.readFileSync(path.join(stateDir, '.services.state.json'), 'utf8')) as State;
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
/** Every process whose command line mentions the work directory (JVMs, postgres backends, azurite). */
const processesUsing = (dir: string): number[] =>
  fs
    .readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(dir);
      } catch {
        return false;
      }
    })
    .map(Number);

describe('npm run services:up / services:down', () => {
  afterAll(async () => {
    await run(process.execPath, [cli, 'down'], { env: childEnv }).catch(() => undefined);
    fs.rmSync(stateDir, { recursive: true, force: true });
  });

  it('starts the four services, reuses them on a second up, and leaves nothing behind on down', async () => {
    const first = await run(process.execPath, [cli, 'up'], { env: childEnv });
    expect(first.stdout).toMatch(/services ready in .* \(started: (postgres|kafka|elasticsearch|azurite)(, (postgres|kafka|elasticsearch|azurite)){3}\)/);
    const state = readState();
    const pids = Object.fromEntries(Object.entries(state.services).map(([name, svc]) => [name, svc.pid]));
    expect(Object.keys(pids).sort()).toEqual(['azurite', 'elasticsearch', 'kafka', 'postgres']);
    for (const pid of Object.values(pids)) expect(alive(pid)).toBe(true);
    const envText = fs.readFileSync(path.join(stateDir, '.services.env'), 'utf8');
    for (const key of ['PGHOST', 'PGPORT', 'PGUSER', 'PGDATABASE', 'KAFKA_BROKERS', 'ELASTICSEARCH_URL', 'AZURE_STORAGE_CONNECTION_STRING']) {
      expect(envText).toMatch(new RegExp(`^${key}=.+$`, 'm'));
    }

    const second = await run(process.execPath, [cli, 'up'], { env: childEnv });
    expect(second.stdout).toContain('started: none');
    expect(Object.fromEntries(Object.entries(readState().services).map(([n, s]) => [n, s.pid]))).toEqual(pids);

    await run(process.execPath, [cli, 'down'], { env: childEnv });
    for (const pid of Object.values(pids)) expect(alive(pid)).toBe(false);
    expect(processesUsing(state.workDir)).toEqual([]);
    expect(fs.existsSync(state.workDir)).toBe(false);
    expect(fs.existsSync(path.join(stateDir, '.services.env'))).toBe(false);
  });
});
