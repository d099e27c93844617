// @ts-check
// npm run services:up | services:down | services:status
//   up [--work-dir DIR]   persistent mode: the services' data lives in DIR and is reused by the next up
//   down [--keep-data]    stop the services but keep a persistent work directory for the next up
//   --only a,b            only these services (postgres, kafka, elasticsearch, azurite)
import { down, status, up, envFile } from './services.mjs';

const cmd = process.argv[2];
const args = process.argv.slice(3);
const workDirAt = args.indexOf('--work-dir');
const onlyAt = args.indexOf('--only');
const only = onlyAt >= 0 ? { only: (args[onlyAt + 1] ?? '').split(',').filter(Boolean) } : {};
try {
  if (cmd === 'up') {
    const t0 = Date.now();
    const workDir = workDirAt >= 0 ? args[workDirAt + 1] : undefined;
    if (workDirAt >= 0 && !workDir) throw new Error('--work-dir needs a directory');
    const { env, startedNow } = await up({ ...only, ...(workDir ? { workDir } : {}) });
    console.log(`services ready in ${((Date.now() - t0) / 1000).toFixed(1)} s (started: ${startedNow.join(', ') || 'none, all reused or external'})`);
    console.log(`endpoints written to ${envFile}:`);
    for (const [k, v] of Object.entries(env)) console.log(`  ${k}=${k.includes('CONNECTION_STRING') ? v.replace(/AccountKey=[^;]+/, 'AccountKey=***') : v}`);
  } else if (cmd === 'down') {
    await down({ ...only, keepData: args.includes('--keep-data') });
    console.log('services stopped');
  } else if (cmd === 'status') {
    for (const [k, v] of Object.entries(await status())) console.log(`${k.padEnd(14)} ${v}`);
  } else {
    console.error('usage: node test/services/cli.mjs up [--work-dir DIR] | down [--keep-data] | status, each with [--only a,b]');
    process.exitCode = 2;
  }
} catch (err) {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
}
