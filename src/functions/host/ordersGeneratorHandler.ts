import type { InvocationContext, Timer } from '@azure/functions';
import type { Env } from '../../shared/core/env.js';
import { generateOrders, ordersGeneratorConfigFromEnv } from '../../shared/orders/ordersGenerator.js';

export function ordersGeneratorHandler(env: Env = process.env) {
  return async (timer: Timer, context: InvocationContext): Promise<number[]> => {
    const config = ordersGeneratorConfigFromEnv(env);
    if (!config.enabled) {
      context.trace('ordersGenerator: disabled (ORDERS_GENERATOR_ENABLED is not true)');
      return [];
    }
    const ids = await generateOrders(config);
    context.log(`ordersGenerator: inserted ${ids.length} orders into ${config.table}${timer.isPastDue ? ' (timer past due)' : ''}`);
    return ids;
  };
}
