/**
 * `npm run deploy` (scripts/deploy.ts) with the external commands replaced at the process boundary:
 * fake `pulumi`, `func` and `npm` first on PATH record their argv, working directory and the
 * settings they were given, and fail when told to. The real CLIs cannot be installed here; what is
 * tested is the order, the arguments, the resume and the messages. The package staging is real.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnEntryPoint } from '../helpers/childProcess.js';

interface Call {
  cmd: string;
  argv: string[];
  cwd: string;
  env: Record<string, string | undefined>;
}

const OUTPUTS = {
  resourceGroupName: 'pgcdc-rg1234',
  functionAppName: 'pgcdc-func5678',
  functionAppHostName: 'pgcdc-func5678.azurewebsites.net',
  elasticsearchUrl: 'https://es.example:9243',
  adxClusterUrl: 'https://pgcdcadx.westeurope.kusto.windows.net',
  adxDatabase: 'cdc',
};

let dir: string;
let bin: string;

// One fake for the three commands: records the call, answers `pulumi stack output --json` and
// `pulumi config get`, and exits 1 when FAKE_FAIL names its call (e.g. "func" or "npm run es:setup").
const FAKE = `#!/usr/bin/env node
const { appendFileSync } = require('node:fs');
const { basename } = require('node:path');
const cmd = basename(process.argv[1]);
const argv = process.argv.slice(2);
const pick = ['ADX_CLUSTER_URL', 'ADX_DATABASE', 'ADX_AUTH', 'ELASTICSEARCH_URL', 'ELASTICSEARCH_API_KEY'];
appendFileSync(process.env.FAKE_LOG, JSON.stringify({ cmd, argv, cwd: process.cwd(), env: Object.fromEntries(pick.map((k) => [k, process.env[k]])) }) + '\\n');
const line = [cmd, ...argv].join(' ');
if (process.env.FAKE_FAIL && line.startsWith(process.env.FAKE_FAIL)) { console.error('fake failure of ' + line); process.exit(1); }
if (cmd === 'pulumi' && argv[0] === 'stack' && argv[1] === 'output') process.stdout.write(process.env.FAKE_OUTPUTS);
if (cmd === 'pulumi' && argv[0] === 'config' && argv[1] === 'get') process.stdout.write('key-from-pulumi-config\\n');
`;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'deploy-test-'));
  bin = join(dir, 'bin');
  mkdirSync(bin);
  for (const cmd of ['pulumi', 'func', 'npm']) {
    const path = join(bin, cmd);
    writeFileSync(path, FAKE, { mode: 0o755 });
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function deploy(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; calls: Call[]; out: string; err: string }> {
  const log = join(dir, `calls-${Math.random().toString(36).slice(2)}.jsonl`);
  writeFileSync(log, '');
  const child = spawnEntryPoint(
    'scripts/deploy.ts',
    {
      PATH: `${bin}:${process.env.PATH ?? ''}`,
      FAKE_LOG: log,
      FAKE_OUTPUTS: JSON.stringify(OUTPUTS),
      DEPLOY_STAGE_DIR: join(dir, 'stage'),
      ...env,
    },
    args,
  );
  const code = await child.exited;
  const calls = readFileSync(log, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Call);
  const out = child.lines
    .filter((l) => typeof l.msg === 'string')
    .map((l) => String(l.msg))
    .join('\n');
  const err = child.lines.map((l) => (typeof l.stderr === 'string' ? l.stderr : '')).join('');
  return { code, calls, out, err };
}

const line = (c: Call) => [c.cmd, ...c.argv].join(' ');

describe('npm run deploy', () => {
  test('runs pulumi up, the build, the publish of the staged package, adx:setup and es:setup against the outputs, and prints the status URL', async () => {
    const { code, calls, out } = await deploy(['--stack', 'dev']);
    expect(code).toBe(0);
    expect(calls.map(line)).toEqual([
      'npm run build --prefix infra',
      'pulumi up --yes --stack dev --cwd infra',
      'npm run build',
      'pulumi stack output --json --stack dev --cwd infra',
      'npm ci --omit=dev --ignore-scripts --no-audit --no-fund',
      'func azure functionapp publish pgcdc-func5678 --javascript',
      'npm run adx:setup',
      'pulumi config get elasticsearchApiKey --stack dev --cwd infra',
      'npm run es:setup',
    ]);
    // The package is installed and published from the staging folder, not the checkout.
    const stage = join(dir, 'stage');
    expect(calls[4]!.cwd).toBe(stage);
    expect(calls[5]!.cwd).toBe(stage);
    expect(existsSync(join(stage, 'host.json'))).toBe(true);
    expect(existsSync(join(stage, 'package.json'))).toBe(true);
    expect(existsSync(join(stage, 'src'))).toBe(false);
    // The setup scripts get the deployed endpoints.
    expect(calls[6]!.env).toMatchObject({ ADX_CLUSTER_URL: OUTPUTS.adxClusterUrl, ADX_DATABASE: 'cdc', ADX_AUTH: 'default' });
    expect(calls[8]!.env).toMatchObject({ ELASTICSEARCH_URL: OUTPUTS.elasticsearchUrl, ELASTICSEARCH_API_KEY: 'key-from-pulumi-config' });
    expect(out).toContain('status: https://pgcdc-func5678.azurewebsites.net/api/status?code=<function key>');
    expect(out).toContain('az functionapp function keys list -g pgcdc-rg1234 -n pgcdc-func5678 --function-name status');
    // The key reaches the setup's environment, never the output.
    expect(out).not.toContain('key-from-pulumi-config');
  });

  test('--preview runs pulumi preview and nothing else', async () => {
    const { code, calls, out } = await deploy(['--stack', 'dev', '--preview']);
    expect(code).toBe(0);
    expect(calls.map(line)).toEqual(['npm run build --prefix infra', 'pulumi preview --stack dev --cwd infra']);
    expect(out).toContain('preview done (nothing changed)');
  });

  test('a failed step says which, and how to resume; --from resumes there', async () => {
    const failed = await deploy(['--stack', 'dev'], { FAKE_FAIL: 'func' });
    expect(failed.code).toBe(1);
    expect(failed.calls.map(line).at(-1)).toBe('func azure functionapp publish pgcdc-func5678 --javascript');
    expect(failed.err).toContain('[deploy] step publish failed: func azure functionapp publish pgcdc-func5678 --javascript exited with 1');
    expect(failed.err).toContain('resume with: npm run deploy -- --stack dev --from publish');

    const resumed = await deploy(['--stack', 'dev', '--from', 'publish'], { ELASTICSEARCH_API_KEY: 'key-from-env' });
    expect(resumed.code).toBe(0);
    expect(resumed.calls.map(line)).toEqual([
      'pulumi stack output --json --stack dev --cwd infra',
      'npm ci --omit=dev --ignore-scripts --no-audit --no-fund',
      'func azure functionapp publish pgcdc-func5678 --javascript',
      'npm run adx:setup',
      'npm run es:setup',
    ]);
    expect(resumed.calls.at(-1)!.env.ELASTICSEARCH_API_KEY).toBe('key-from-env');
  });

  test('without ADX in the stack, adx:setup is skipped and said so', async () => {
    const { code, calls, out } = await deploy(['--stack', 'dev', '--from', 'adx-setup'], {
      FAKE_OUTPUTS: JSON.stringify({ ...OUTPUTS, adxClusterUrl: '', adxDatabase: '' }),
      ELASTICSEARCH_API_KEY: 'k',
    });
    expect(code).toBe(0);
    expect(calls.map(line)).toEqual(['pulumi stack output --json --stack dev --cwd infra', 'npm run es:setup']);
    expect(out).toContain('no ADX in this stack (adxMode=none): adx:setup skipped');
  });

  test('bad arguments and a missing CLI are named, with the fix', async () => {
    const noStack = await deploy([]);
    expect(noStack.code).toBe(2);
    expect(noStack.err).toContain('--stack is required');
    const badStep = await deploy(['--stack', 'dev', '--from', 'deploy-everything']);
    expect(badStep.code).toBe(2);
    expect(badStep.err).toContain('--from deploy-everything: not a step; the steps are infra, build, publish, adx-setup, es-setup, status');
    rmSync(join(bin, 'func'));
    try {
      const missing = await deploy(['--stack', 'dev', '--from', 'publish'], { PATH: `${bin}:${dirnameOfNode()}` });
      expect(missing.code).toBe(1);
      expect(missing.err).toContain('func is not installed or not on PATH');
    } finally {
      writeFileSync(join(bin, 'func'), FAKE, { mode: 0o755 });
      chmodSync(join(bin, 'func'), 0o755);
    }
  });
});

/** PATH with only node's own folder (so `func` is found nowhere). */
function dirnameOfNode(): string {
  return join(process.execPath, '..');
}
