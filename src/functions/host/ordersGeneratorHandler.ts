import type { InvocationContext, Timer } from '@azure/functions';
import type { Env } from '../../shared/core/env.js';
import { generatorConfigFromEnv } from '../../shared/generator/config.js';
import { generateOnce, type GeneratorSummary } from '../../shared/generator/generator.js';

export function ordersGeneratorHandler(env: Env = process.env) {
  return async (timer: Timer, context: InvocationContext): Promise<GeneratorSummary | undefined> => {
    // A late run (the host was down or busy) is not made up for: the next on-time run goes on as usual.
    if (timer.isPastDue) {
      context.log('ordersGenerator: timer past due, run skipped');
      return undefined;
    }
    const config = generatorConfigFromEnv(env);
    if (!config.enabled) {
      context.trace('ordersGenerator: disabled (ORDERS_GENERATOR_ENABLED is not true)');
      return undefined;
    }
    const s = await generateOnce(config);
    context.log(`ordersGenerator: ${config.workload} → ${config.table}: ${s.inserts} inserts, ${s.updates} updates, ${s.deletes} deletes`);
    return s;
  };
}
