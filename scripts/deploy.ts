/**
 * `npm run deploy -- --stack <name> [--from <step>] [--preview]`: the whole deployment to Azure in
 * order (README "Deploy to Azure"), each step safe to run again:
 *   infra      compile infra/ and `pulumi up` the stack (with --preview: `pulumi preview`, then stop);
 *   build      `npm run build`;
 *   publish    stage the Functions package (the files .funcignore lets through, production
 *              dependencies only) and `func azure functionapp publish <app>` from it;
 *   adx-setup  `npm run adx:setup` against the stack's ADX database (skipped without ADX);
 *   es-setup   `npm run es:setup` against the stack's Elasticsearch;
 *   status     print the status function's URL.
 * The steps after `infra` read the stack's outputs (`pulumi stack output --json`). A failed step
 * names itself and the command that resumes from it. Commands run as child processes with the
 * terminal attached, found on PATH (pulumi, func, npm).
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { packageFiles } from './funcignore.js';

export const STEPS = ['infra', 'build', 'publish', 'adx-setup', 'es-setup', 'status'] as const;
type Step = (typeof STEPS)[number];

const root = resolve(import.meta.dirname, '..');
const stageDir = resolve(root, process.env.DEPLOY_STAGE_DIR ?? join('artifacts', 'functions-package'));

interface Options {
  stack: string;
  from: Step;
  preview: boolean;
}

class DeployError extends Error {}

const USAGE = `usage: npm run deploy -- --stack <name> [--from <step>] [--preview]
  steps, in order: ${STEPS.join(', ')}`;

function parseArgs(argv: string[]): Options {
  let stack: string | undefined;
  let from: Step = 'infra';
  let preview = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) throw new DeployError(`${arg} needs a value\n${USAGE}`);
      return v;
    };
    if (arg === '--stack') stack = value();
    else if (arg === '--from') {
      const step = value();
      if (!(STEPS as readonly string[]).includes(step)) throw new DeployError(`--from ${step}: not a step; the steps are ${STEPS.join(', ')}`);
      from = step as Step;
    } else if (arg === '--preview') preview = true;
    else if (arg === '--help' || arg === '-h') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else throw new DeployError(`unknown argument ${arg}\n${USAGE}`);
  }
  if (stack === undefined || stack === '')
    throw new DeployError(`--stack is required (the Pulumi stack, e.g. dev; pulumi stack init dev --cwd infra creates one)\n${USAGE}`);
  return { stack, from, preview };
}

const say = (line: string) => process.stdout.write(`[deploy] ${line}\n`);

/** Runs a command with the terminal attached; a non-zero exit is a DeployError naming it. */
function run(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; capture?: boolean } = {}): string {
  const shown = [command, ...args].join(' ');
  say(`$ ${shown}${options.cwd && options.cwd !== root ? `   (in ${options.cwd})` : ''}`);
  const result = spawnSync(command, args, {
    cwd: options.cwd ?? root,
    env: options.env ?? process.env,
    stdio: options.capture ? ['inherit', 'pipe', 'inherit'] : 'inherit',
    encoding: 'utf8',
  });
  if (result.error) {
    const missing = (result.error as NodeJS.ErrnoException).code === 'ENOENT';
    throw new DeployError(
      missing ? `${command} is not installed or not on PATH (README "Deploy to Azure", prerequisites)` : `${shown}: ${result.error.message}`,
    );
  }
  if (result.status !== 0) throw new DeployError(`${shown} exited with ${result.status ?? result.signal}`);
  return options.capture ? result.stdout : '';
}

const pulumi = (o: Options, args: string[], capture = false) => run('pulumi', [...args, '--stack', o.stack, '--cwd', 'infra'], { capture });

interface StackOutputs {
  resourceGroupName: string;
  functionAppName: string;
  functionAppHostName: string;
  elasticsearchUrl: string;
  adxClusterUrl: string;
  adxDatabase: string;
}

function stackOutputs(o: Options): StackOutputs {
  const text = pulumi(o, ['stack', 'output', '--json'], true);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new DeployError(`pulumi stack output --json did not print JSON: ${text.slice(0, 200)}`);
  }
  const outputs = parsed as Partial<Record<keyof StackOutputs, unknown>>;
  for (const key of ['resourceGroupName', 'functionAppName', 'functionAppHostName', 'elasticsearchUrl'] as const) {
    if (typeof outputs[key] !== 'string' || outputs[key] === '')
      throw new DeployError(`the stack has no output ${key}: has the infra step run (npm run deploy -- --stack ${o.stack})?`);
  }
  return {
    resourceGroupName: String(outputs.resourceGroupName),
    functionAppName: String(outputs.functionAppName),
    functionAppHostName: String(outputs.functionAppHostName),
    elasticsearchUrl: String(outputs.elasticsearchUrl),
    adxClusterUrl: typeof outputs.adxClusterUrl === 'string' ? outputs.adxClusterUrl : '',
    adxDatabase: typeof outputs.adxDatabase === 'string' ? outputs.adxDatabase : '',
  };
}

/** Copies the files .funcignore lets through (not node_modules) to a clean folder. */
export function stageFunctionsPackage(from: string, to: string): string[] {
  rmSync(to, { recursive: true, force: true });
  const files = packageFiles(from).filter((f) => f !== 'node_modules/');
  for (const file of files) {
    mkdirSync(dirname(join(to, file)), { recursive: true });
    cpSync(join(from, file), join(to, file));
  }
  cpSync(join(from, '.funcignore'), join(to, '.funcignore'));
  return files;
}

function runStep(step: Step, o: Options, outputs: () => StackOutputs): void {
  switch (step) {
    case 'infra':
      run('npm', ['run', 'build', '--prefix', 'infra']);
      pulumi(o, o.preview ? ['preview'] : ['up', '--yes']);
      return;
    case 'build':
      run('npm', ['run', 'build']);
      return;
    case 'publish': {
      const { functionAppName } = outputs();
      const files = stageFunctionsPackage(root, stageDir);
      say(`staged ${files.length} files in ${stageDir}`);
      run('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: stageDir });
      run('func', ['azure', 'functionapp', 'publish', functionAppName, '--javascript'], { cwd: stageDir });
      return;
    }
    case 'adx-setup': {
      const { adxClusterUrl, adxDatabase } = outputs();
      if (adxClusterUrl === '') {
        say('no ADX in this stack (adxMode=none): adx:setup skipped');
        return;
      }
      // The deployer's own Azure CLI login (DefaultAzureCredential); the cluster's creator is its admin.
      run('npm', ['run', 'adx:setup'], { env: { ...process.env, ADX_CLUSTER_URL: adxClusterUrl, ADX_DATABASE: adxDatabase, ADX_AUTH: 'default' } });
      return;
    }
    case 'es-setup': {
      const { elasticsearchUrl } = outputs();
      const apiKey = process.env.ELASTICSEARCH_API_KEY ?? pulumi(o, ['config', 'get', 'elasticsearchApiKey'], true).trim();
      run('npm', ['run', 'es:setup'], { env: { ...process.env, ELASTICSEARCH_URL: elasticsearchUrl, ELASTICSEARCH_API_KEY: apiKey } });
      return;
    }
    case 'status': {
      const { functionAppHostName, functionAppName, resourceGroupName } = outputs();
      say(`status: https://${functionAppHostName}/api/status?code=<function key>`);
      say(`  the key: az functionapp function keys list -g ${resourceGroupName} -n ${functionAppName} --function-name status --query default -o tsv`);
      return;
    }
  }
}

export function main(argv: string[]): number {
  let options: Options;
  try {
    options = parseArgs(argv);
  } catch (err) {
    process.stderr.write(`[deploy] ${(err as Error).message}\n`);
    return 2;
  }
  let cached: StackOutputs | undefined;
  const outputs = () => (cached ??= stackOutputs(options));
  const steps = options.preview ? (['infra'] as const) : STEPS.slice(STEPS.indexOf(options.from));
  if (options.preview && options.from !== 'infra') {
    process.stderr.write('[deploy] --preview previews the infrastructure only (pulumi preview); it takes no --from\n');
    return 2;
  }
  for (const step of steps) {
    say(`step ${step} (${STEPS.indexOf(step) + 1}/${STEPS.length})`);
    try {
      runStep(step, options, outputs);
    } catch (err) {
      if (!(err instanceof DeployError)) throw err;
      process.stderr.write(`[deploy] step ${step} failed: ${err.message}\n`);
      if (!options.preview) process.stderr.write(`[deploy] fix the cause, then resume with: npm run deploy -- --stack ${options.stack} --from ${step}\n`);
      return 1;
    }
  }
  say(options.preview ? 'preview done (nothing changed)' : `done: stack ${options.stack} deployed`);
  return 0;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === resolve(import.meta.filename)) process.exitCode = main(process.argv.slice(2));
