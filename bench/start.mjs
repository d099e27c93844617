// @ts-check
/**
 * `node bench/start.mjs [npm start flags]`: how long `npm start` takes from its launch to the first
 * order of the run in Elasticsearch's `-live` index (the first increase of its count), and how long Ctrl-C (SIGINT) then takes to stop it all.
 * Runs the real `npm start` (with your environment: unset PGHOST & co. for the cold case, so it
 * starts its own services) and reads the Elasticsearch URL from its "services ready" line.
 *   cold: node bench/start.mjs --fresh     (services not running, state folder removed first)
 *   warm: node bench/start.mjs             (state folder from an earlier run kept)
 * BENCH_INDEX: the orders index (default cdc-retail.orders_info, the CDC_ROUTES default).
 */
import { spawn } from 'node:child_process';

const index = process.env.BENCH_INDEX ?? 'cdc-retail.orders_info';
const t0 = Date.now();
const seconds = (from = t0) => ((Date.now() - from) / 1000).toFixed(1);
// Its own process group, signalled as a whole as a terminal's Ctrl-C does.
const child = spawn('npm', ['start', '--', ...process.argv.slice(2)], { stdio: ['ignore', 'pipe', 'inherit'], detached: true });
/** @type {string | undefined} */
let esUrl;
let out = '';
child.stdout.on('data', (d) => {
  process.stdout.write(d);
  out += d.toString();
  esUrl ??= /elasticsearch (http:\/\/\S+)/.exec(out)?.[1];
});
const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
let done = false;
void exited.then(() => (done = true));

const deadline = Date.now() + 600_000;
let first;
// The count once Elasticsearch answers (0 while the index does not exist): a warm start's index
// already holds the earlier runs' orders, so the first order of this run is the first increase.
/** @type {number | undefined} */
let baseline;
while (!done && Date.now() < deadline) {
  if (esUrl) {
    try {
      const res = await fetch(`${esUrl}/${index}-live/_count`, { signal: AbortSignal.timeout(2000) });
      const count = res.status === 200 ? /** @type {{ count: number }} */ (await res.json()).count : res.status === 404 ? 0 : undefined;
      if (count !== undefined) baseline ??= count;
      if (count !== undefined && baseline !== undefined && count > baseline) {
        first = seconds();
        break;
      }
    } catch {
      /* not up yet */
    }
  }
  await new Promise((r) => setTimeout(r, 250));
}
const stopAt = Date.now();
process.kill(-(/** @type {number} */ (child.pid)), 'SIGINT');
const code = await exited;
console.log(`\nbench:start first order in ${index}-live after ${first ?? 'never'} s; stopped ${seconds(stopAt)} s after SIGINT (exit ${code})`);
process.exitCode = first === undefined ? 1 : 0;
