// Entry file (package.json `main`): registers adxSink, elasticsearchSink and changeHistory, with
// Application Insights telemetry when APPLICATIONINSIGHTS_CONNECTION_STRING is set (a malformed one
// fails the start-up, named). The worker loads every entry file before the first invocation, so the
// telemetry hooks are in place for the status and generator functions too.
import { registerSinks } from './host/registerSinks.js';
import { startFunctionsTelemetry } from './host/telemetry.js';
import { SINKS } from '../shared/sinks/registry.js';

registerSinks(process.env, SINKS, await startFunctionsTelemetry(process.env));
