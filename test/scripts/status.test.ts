/** `npm run status` (scripts/status.ts) as a child process over the real services: the terminal text, --line and --json. */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnEntryPoint } from '../helpers/childProcess.js';
import { statusKit, type StatusKit } from '../shared/status/statusKit.js';

async function run(env: Record<string, string>, ...args: string[]): Promise<{ code: number | null; out: string }> {
  const child = spawnEntryPoint('scripts/status.ts', env, args);
  const code = await child.exited;
  return { code, out: child.lines.map((l) => (typeof l.msg === 'string' ? l.msg : typeof l.stderr === 'string' ? l.stderr : JSON.stringify(l))).join('\n') };
}

describe('npm run status', () => {
  let kit: StatusKit;
  beforeAll(async () => {
    kit = await statusKit('st_cli');
  });
  afterAll(async () => {
    await kit?.close();
  });

  it('prints every stage with its numbers and exits 0 when every configured source answered', async () => {
    const { code, out } = await run(kit.env);
    expect(code).toBe(0);
    expect(out).toContain(`PostgreSQL  slot ${kit.names.slot} (inactive): lag `);
    expect(out).toContain('reader      7 changes');
    expect(out).toContain(`hub         kafka ${kit.names.topic}: 8 events published over 3 partitions`);
    expect(out).toContain(`group ${kit.names.esGroup}: lag 3 (0:3 1:0 2:0)`);
    expect(out).toContain(`dead letters ${kit.names.container}: 3 (elasticsearchSink 2, changeHistory 1)`);
    expect(out).toContain('end to end  lag 1.5 s');
  });

  it('--line prints the one-liner; a failing source makes the exit code 1', async () => {
    const { code, out } = await run({ ...kit.env, READER_METRICS_URL: 'http://127.0.0.1:9/metrics' }, '--line');
    expect(code).toBe(1);
    expect(out).toBe('published 8 | indexed 3 | dead letters 3 | end-to-end lag 1.8 s | ! reader');
  });

  it('a bad setting: exit code 2, naming it', async () => {
    const { code, out } = await run({ ...kit.env, STATUS_SOURCE_TIMEOUT_MS: 'soon' }, '--json');
    expect(code).toBe(2);
    expect(out).toContain('STATUS_SOURCE_TIMEOUT_MS: expected an integer between 100 and 120000, got "soon"');
  });
});
