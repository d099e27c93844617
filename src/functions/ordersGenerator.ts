import { app, type TimerFunctionOptions } from '@azure/functions';
import { ordersGeneratorHandler } from './host/ordersGeneratorHandler.js';

// Six-field NCRONTAB ({second} {minute} {hour} {day} {month} {day-of-week}); default every 10 seconds.
// Does nothing unless ORDERS_GENERATOR_ENABLED=true.
export const ordersGeneratorOptions: TimerFunctionOptions = {
  schedule: process.env.ORDERS_GENERATOR_SCHEDULE === undefined ? '*/10 * * * * *' : '%ORDERS_GENERATOR_SCHEDULE%',
  runOnStartup: false,
  handler: async (timer, context) => {
    await ordersGeneratorHandler()(timer, context);
  },
};

app.timer('ordersGenerator', ordersGeneratorOptions);
