// @ts-check
// npm run services:up | services:down | services:status
import { down, status, up, envFile } from './services.mjs';

const cmd = process.argv[2];
try {
  if (cmd === 'up') {
    const t0 = Date.now();
    const { env, startedNow } = await up();
    console.log(`services ready in ${((Date.now() - t0) / 1000).toFixed(1)} s (started: ${startedNow.join(', ') || 'none, all reused or external'})`);
    console.log(`endpoints written to ${envFile}:`);
    for (const [k, v] of Object.entries(env)) console.log(`  ${k}=${k.includes('CONNECTION_STRING') ? v.replace(/AccountKey=[^;]+/, 'AccountKey=***') : v}`);
  } else if (cmd === 'down') {
    await down();
    console.log('services stopped');
  } else if (cmd === 'status') {
    for (const [k, v] of Object.entries(await status())) console.log(`${k.padEnd(14)} ${v}`);
  } else {
    console.error('usage: node test/services/cli.mjs up|down|status');
    process.exitCode = 2;
  }
} catch (err) {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
}
