/**
 * Application Insights for the Functions app, as Microsoft documents it for Node.js: the Azure
 * Monitor OpenTelemetry distro (`useAzureMonitor`: trace, metric and log exporters to the ingestion
 * endpoint of `APPLICATIONINSIGHTS_CONNECTION_STRING`) plus `@azure/functions-opentelemetry-instrumentation`,
 * which registers two hooks with the Functions worker: `preInvocation` runs each handler in the
 * trace context the host started for the invocation, and `log` turns every `context.log`/`warn`/...
 * line into an OpenTelemetry log record in the active context (so it carries the invocation's
 * operation id); it also tells the host (capability `WorkerOpenTelemetryEnabled`) that the worker
 * sends these lines itself, so they are not sent twice.
 *
 * On top of that, the sink handlers (eventHubBatchHandler.ts) open one span per batch and record the
 * batch metrics (src/shared/batch/metrics.ts) through `FunctionsTelemetry`.
 *
 * Without a connection string nothing is loaded (the packages are imported dynamically) and the
 * handlers get no telemetry at all. A malformed one fails start-up with a ConfigError naming the
 * variable, never its value (the key is a secret).
 */
import { app } from '@azure/functions';
import type * as AzFunc from '@azure/functions';
import { DiagLogLevel, diag, metrics, trace, type Tracer } from '@opentelemetry/api';
import { appInsightsConnectionString } from '../../shared/core/appInsights.js';
import { getOptionalString, getString, type Env } from '../../shared/core/env.js';
import { otelBatchMetrics, SINK_METRIC_NAMES, type BatchMetrics } from '../../shared/batch/metrics.js';
import { createLogger, type Logger } from '../../shared/core/logger.js';

/** The instrumentation scope of our spans and metrics. */
export const TELEMETRY_SCOPE = 'pg-cdc-functions';

/**
 * Resource detectors when `OTEL_NODE_RESOURCE_DETECTORS` is not set: the distro's default list also
 * has `azure_vm`, which queries the VM metadata endpoint at start-up, pointless (and slow to time
 * out) in a Function App; `azure_functions` reads the site's settings.
 */
export const DEFAULT_RESOURCE_DETECTORS = 'env,os,process,serviceinstance,azure_functions';

export interface FunctionsTelemetry {
  tracer: Tracer;
  metrics: BatchMetrics;
  /** Exports everything recorded so far: spans, log records and metrics. */
  flush(): Promise<void>;
  /** Flushes and stops the exporters (the host's `appTerminate` hook). */
  shutdown(): Promise<void>;
}

/** What the instrumentation needs of `@azure/functions`: `app.setup` and `app.hook` (the Functions worker runs the hooks). */
export interface FunctionsApp {
  setup: (typeof AzFunc.app)['setup'];
  hook: Pick<(typeof AzFunc.app)['hook'], 'log' | 'preInvocation' | 'appTerminate'>;
}

interface Flushable {
  forceFlush?: () => Promise<void>;
}

/**
 * Starts the export when `APPLICATIONINSIGHTS_CONNECTION_STRING` is set; `undefined` (nothing
 * started, nothing imported) when it is not. Call once per process, before functions are invoked:
 * `useAzureMonitor` replaces the global OpenTelemetry providers.
 */
export async function startFunctionsTelemetry(env: Env, options: { app?: FunctionsApp; logger?: Logger } = {}): Promise<FunctionsTelemetry | undefined> {
  const connectionString = appInsightsConnectionString(env);
  if (connectionString === undefined) return undefined;
  const functionsApp = options.app ?? app;
  // Start-up lines go to stdout (the host's log); the connection string is masked should a message hold it.
  const log = options.logger ?? createLogger({ secrets: [connectionString], base: { component: 'telemetry' } });
  const serviceName = getString(env, 'OTEL_SERVICE_NAME', getOptionalString(env, 'WEBSITE_SITE_NAME') ?? TELEMETRY_SCOPE);
  // The distro reads its resource detectors from the process environment only.
  process.env.OTEL_NODE_RESOURCE_DETECTORS ??= DEFAULT_RESOURCE_DETECTORS;

  const [{ useAzureMonitor, shutdownAzureMonitor }, { resourceFromAttributes }, instrumentationPackage] = await Promise.all([
    import('@azure/monitor-opentelemetry'),
    import('@opentelemetry/resources'),
    import('@azure/functions-opentelemetry-instrumentation'),
  ]);
  useAzureMonitor({
    azureMonitorExporterOptions: { connectionString },
    resource: resourceFromAttributes({ 'service.name': serviceName }),
    // One trace per batch, and none dropped here: the distro's default rate limit (5 traces/s) would
    // sample batches away when many partitions are busy. Sampling, if wanted, belongs to ingestion.
    samplingRatio: 1,
    tracesPerSecond: 0,
    // Live Metrics holds a second connection open per instance; the portal's Live Metrics of the
    // host itself still work.
    enableLiveMetrics: false,
  });
  // The SDK's own errors (export failures) go to the log; the logger masks the connection string.
  const details = (args: unknown[]) => (args.length ? { details: args.map((a) => (a instanceof Error ? a.message : String(a))) } : undefined);
  diag.setLogger(
    {
      error: (msg, ...args) => log.warn(`opentelemetry: ${msg}`, details(args)),
      warn: (msg, ...args) => log.warn(`opentelemetry: ${msg}`, details(args)),
      info: () => undefined,
      debug: () => undefined,
      verbose: () => undefined,
    },
    { logLevel: DiagLogLevel.ERROR, suppressOverrideMessage: true },
  );
  // ESM: the require hook of `InstrumentationBase` never sees `@azure/functions` (it is imported, not
  // required), so the instrumentation is handed the module's `app` explicitly (registerAzFunc).
  // `enabled: false` keeps it from installing that useless require hook; registerAzFunc still patches.
  const instrumentation = new instrumentationPackage.default.AzureFunctionsInstrumentationESM({ enabled: false });
  // The ESM instrumentation uses only `app.setup` and `app.hook` of the module it is given.
  instrumentation.registerAzFunc({ app: functionsApp } as unknown as typeof AzFunc);

  const flush = async () => {
    const tracerProvider = trace.getTracerProvider() as { getDelegate?: () => Flushable } & Flushable;
    const { logs } = await import('@opentelemetry/api-logs');
    await Promise.all([
      (tracerProvider.getDelegate?.() ?? tracerProvider).forceFlush?.(),
      (logs.getLoggerProvider() as Flushable).forceFlush?.(),
      (metrics.getMeterProvider() as Flushable).forceFlush?.(),
    ]);
  };
  const telemetry: FunctionsTelemetry = {
    tracer: trace.getTracer(TELEMETRY_SCOPE),
    metrics: otelBatchMetrics(metrics.getMeter(TELEMETRY_SCOPE)),
    flush,
    shutdown: async () => {
      await flush();
      await shutdownAzureMonitor();
    },
  };
  // A scaled-in instance gets `appTerminate`: what is still buffered goes out before it stops.
  functionsApp.hook.appTerminate(() => telemetry.shutdown());
  log.info('Application Insights export on', { serviceName, metrics: Object.values(SINK_METRIC_NAMES) });
  return telemetry;
}
