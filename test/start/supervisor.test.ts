/**
 * The restart policy of `npm start`'s children, with real child processes (a small TypeScript entry
 * point run exactly as the reader and the worker are).
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoRoot } from '../../src/start/config.js';
import { Supervised, type SupervisorEvents } from '../../src/start/supervisor.js';
import { eventually } from '../helpers/services.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pg-cdc-supervisor-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** An entry point that exits with the codes of `codes` on its first starts, then runs until SIGTERM. */
function entry(name: string, codes: number[]): string {
  const file = path.join(dir, `${name}.ts`);
  const counter = path.join(dir, `${name}.count`);
  fs.writeFileSync(
    file,
    `import fs from 'node:fs';
const n: number = fs.existsSync(${JSON.stringify(counter)}) ? Number(fs.readFileSync(${JSON.stringify(counter)}, 'utf8')) : 0;
fs.writeFileSync(${JSON.stringify(counter)}, String(n + 1));
const codes: number[] = ${JSON.stringify(codes)};
console.log(JSON.stringify({ level: 'error', msg: 'start ' + n }));
if (n < codes.length) process.exit(codes[n]);
process.on('SIGTERM', () => { console.log('bye'); process.exit(0); });
setInterval(() => undefined, 1000);
`,
  );
  return file;
}

function recorder(): SupervisorEvents & { said: string[]; fatals: string[] } {
  const said: string[] = [];
  const fatals: string[] = [];
  return {
    said,
    fatals,
    say: (line) => void said.push(line),
    started: () => undefined,
    fatal: (_name, reason) => void fatals.push(reason),
  };
}

const spec = (name: string, file: string) => ({
  name,
  entry: file,
  env: { PATH: process.env.PATH ?? '' },
  cwd: repoRoot,
  logFile: path.join(dir, `${name}.log`),
  secrets: [],
});

describe('Supervised', () => {
  it('restarts a child that failed, printing its last lines, and stops it on request', async () => {
    const events = recorder();
    const child = new Supervised(spec('flaky', entry('flaky', [1])), events);
    child.start();
    await eventually(
      'the restarted child',
      () => (child.restarts === 1 && child.pid !== undefined && child.tail().includes('{"level":"error","msg":"start 1"}') ? true : undefined),
      20_000,
    );
    expect(events.said.join('\n')).toContain('flaky stopped unexpectedly (exit code 1); its last lines');
    expect(events.said).toContain('flaky: restarting in 1 s');
    expect(events.said.some((l) => l.startsWith('flaky error: start 0'))).toBe(true);
    expect(child.pids).toHaveLength(2);
    await child.stop(10_000);
    expect(child.pid).toBeUndefined();
    expect(events.fatals).toEqual([]);
    expect(fs.readFileSync(path.join(dir, 'flaky.log'), 'utf8')).toContain('bye');
    for (const pid of child.pids) expect(() => process.kill(pid, 0)).toThrow();
  });

  it('gives up at once on exit code 2 (a bad setting: restarting cannot help)', async () => {
    const events = recorder();
    const child = new Supervised(spec('misconfigured', entry('misconfigured', [2])), events);
    child.start();
    await eventually('the fatal report', () => (events.fatals.length > 0 ? true : undefined), 20_000);
    expect(events.fatals).toEqual(['misconfigured refused its configuration (exit code 2): restarting cannot help; fix the setting named above']);
    await new Promise((r) => setTimeout(r, 1500));
    expect(child.pids).toHaveLength(1);
    await child.stop(1000);
  });
});
