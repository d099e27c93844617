// Entry file (package.json `main`): the `status` HTTP function, GET /api/status with a function key.
import { app } from '@azure/functions';
import { statusFunctionOptions } from './host/statusHandler.js';

app.http('status', statusFunctionOptions());
