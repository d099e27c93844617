/**
 * The order generator of `npm start`, behind one function so that a paced generator API can replace
 * it: random orders into `retail.orders_info` (ORDERS_TABLE) at `perSecond`, through the generator's
 * own `generateOrders`, until `signal` aborts.
 */
import { generateOrders, type OrdersGeneratorConfig } from '../shared/orders/ordersGenerator.js';
import { describeError } from '../shared/core/errors.js';

export interface OrdersRun {
  /** Orders written so far in this run. */
  written(): number;
  /** Settles once the generator has stopped (after `signal` aborted and the insert in flight finished). */
  done: Promise<void>;
}

const TICK_MS = 200;
const RETRY_MS = 2_000;

/**
 * Inserts what is due at each tick (`perSecond` × elapsed time − written), one statement per tick, so
 * the rate holds whatever the tick's jitter. An insert that fails (PostgreSQL restarting) is reported
 * through `say` once per failure streak and retried; the orders due meanwhile are not made up for.
 */
export function runOrders(config: OrdersGeneratorConfig, perSecond: number, options: { signal: AbortSignal; say: (line: string) => void }): OrdersRun {
  let written = 0;
  const done = (async () => {
    if (perSecond <= 0) return;
    let base = Date.now();
    let baseWritten = 0;
    let failing = false;
    while (!options.signal.aborted) {
      const due = Math.floor(((Date.now() - base) / 1000) * perSecond) - (written - baseWritten);
      if (due > 0) {
        try {
          written += (await generateOrders({ ...config, perRun: due })).length;
          if (failing) options.say('orders: inserting again');
          failing = false;
        } catch (err) {
          if (!failing) options.say(`orders: insert failed, retrying every ${RETRY_MS / 1000} s: ${describeError(err)}`);
          failing = true;
          await sleep(RETRY_MS, options.signal);
          base = Date.now();
          baseWritten = written;
          continue;
        }
      }
      await sleep(TICK_MS, options.signal);
    }
  })();
  return { written: () => written, done };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
