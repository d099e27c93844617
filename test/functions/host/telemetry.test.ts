/**
 * Application Insights from the Functions app: the real distro (`useAzureMonitor`), the real
 * `@azure/functions-opentelemetry-instrumentation`, the real sink handlers
 * (createEventHubBatchHandler) with an InvocationContext and trigger-shaped batches against real
 * Elasticsearch and a Blob dead-letter container (Azurite). Played here: the ingestion endpoint
 * (test/helpers/breeze.ts, HTTPS on 127.0.0.1, trusted by this process) and the Functions worker,
 * which outside the host does not exist: `workerStandIn` keeps the hooks the instrumentation
 * registers and runs them as the worker does, `preInvocation` before the handler and `log` for each
 * `context.log` line.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import {
  Disposable,
  LogHookContext,
  PreInvocationContext,
  type AppTerminateHandler,
  type LogHookHandler,
  type PreInvocationHandler,
  type SetupOptions,
} from '@azure/functions';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { Client } from '@elastic/elasticsearch';
import { createEventHubBatchHandler, type EventHubBatchHandler } from '../../../src/functions/host/eventHubBatchHandler.js';
import { startFunctionsTelemetry, type FunctionsApp, type FunctionsTelemetry } from '../../../src/functions/host/telemetry.js';
import { SINK_METRIC_NAMES } from '../../../src/shared/batch/metrics.js';
import type { BatchReport } from '../../../src/shared/batch/types.js';
import { BatchProcessingError, ConfigError } from '../../../src/shared/core/errors.js';
import { lazy } from '../../../src/shared/core/lazy.js';
import { memoryLogger } from '../../../src/shared/core/logger.js';
import { BlobDeadLetterStore } from '../../../src/shared/deadletter/blobDeadLetterStore.js';
import { ElasticsearchHistorySink } from '../../../src/shared/history/historySink.js';
import { DEFAULT_ROUTES, Router } from '../../../src/shared/routing/routes.js';
import { fakeBreeze, metricPoints, type Envelope, type FakeBreeze } from '../../helpers/breeze.js';
import { changeEvent, holding, hostBody, order } from '../../helpers/events.js';
import { serviceEnv, uniqueName } from '../../helpers/services.js';
import { cleanup, testClient, testRoutes, testSink, uniqueIndex } from '../../shared/esTestKit.js';
import { triggerBatch } from '../triggerBatch.js';

/** The Functions worker's side of the hooks: what `app.setup` and `app.hook.*` hand to it, and running them. */
function workerStandIn() {
  const setups: SetupOptions[] = [];
  const hooks = { log: [] as LogHookHandler[], preInvocation: [] as PreInvocationHandler[], appTerminate: [] as AppTerminateHandler[] };
  const keep =
    <H>(list: H[]) =>
    (handler: H) => {
      list.push(handler);
      return new Disposable(() => list.splice(list.indexOf(handler), 1));
    };
  const app: FunctionsApp = {
    setup: (options) => void setups.push(options),
    hook: { log: keep(hooks.log), preInvocation: keep(hooks.preInvocation), appTerminate: keep(hooks.appTerminate) },
  };
  /** One invocation as the worker runs it: preInvocation hooks, then the (possibly wrapped) handler; log hooks per line. */
  async function invoke(handler: EventHubBatchHandler, batch: ReturnType<typeof triggerBatch>): Promise<BatchReport> {
    const pre = new PreInvocationContext({ invocationContext: batch.context, functionCallback: handler as never, inputs: [batch.messages] });
    for (const hook of hooks.preInvocation) await hook(pre);
    return (await pre.functionHandler(batch.messages, batch.context)) as BatchReport;
  }
  return { app, setups, hooks, invoke };
}

const W3C_TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const traceContext = (parentSpanId: string) => ({ traceParent: `00-${W3C_TRACE_ID}-${parentSpanId}-01`, traceState: '', attributes: {} });

const client = testClient();
const index = uniqueIndex('otel_fn');
const historyIndex = `${index}-history`;
let container: ContainerClient;
let breeze: FakeBreeze;

beforeAll(async () => {
  container = BlobServiceClient.fromConnectionString(serviceEnv().azureStorageConnectionString).getContainerClient(uniqueName('dlq-otel').replaceAll('_', '-'));
  breeze = await fakeBreeze();
  breeze.trustInThisProcess();
  // No SDK self-telemetry (statsbeat) to Microsoft's endpoints from a test.
  process.env.APPLICATION_INSIGHTS_NO_STATSBEAT = 'true';
});
afterAll(async () => {
  await breeze.close();
  await container.deleteIfExists();
  await cleanup(client, [index, `${index}-holding`, historyIndex]);
  await client.indices.deleteIndexTemplate({ name: `cdc-history-${historyIndex}` }).catch(() => undefined);
  await client.close();
});

describe('Functions telemetry: off, misconfigured', () => {
  it('is off without APPLICATIONINSIGHTS_CONNECTION_STRING: nothing started, no hook registered', async () => {
    const worker = workerStandIn();
    expect(await startFunctionsTelemetry({}, { app: worker.app })).toBeUndefined();
    expect(worker.setups).toEqual([]);
    expect(Object.values(worker.hooks).flat()).toEqual([]);
  });

  it('names a malformed connection string at start-up without showing it', async () => {
    const bad = 'InstrumentationKey=not-a-guid;IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/';
    const worker = workerStandIn();
    const started = startFunctionsTelemetry({ APPLICATIONINSIGHTS_CONNECTION_STRING: bad }, { app: worker.app });
    await expect(started).rejects.toThrow(ConfigError);
    await expect(started).rejects.toThrow(/^APPLICATIONINSIGHTS_CONNECTION_STRING: expected an Application Insights connection string/);
    await expect(started).rejects.not.toThrow(/not-a-guid/);
    expect(Object.values(worker.hooks).flat()).toEqual([]);
  });

  it('host.json: the host samples its own telemetry but never requests or exceptions (failed invocations)', () => {
    const host = JSON.parse(readFileSync('host.json', 'utf8')) as { logging: { applicationInsights: { samplingSettings: { excludedTypes: string } } } };
    expect(host.logging.applicationInsights.samplingSettings.excludedTypes.split(';')).toEqual(expect.arrayContaining(['Request', 'Exception']));
  });
});

describe('Functions telemetry to Application Insights', () => {
  const ikey = '9d2c6f3e-1b7a-4c55-8e0f-0123456789ab';
  let telemetry: FunctionsTelemetry;
  let worker: ReturnType<typeof workerStandIn>;
  const startupLog = memoryLogger();
  const contextLogs: string[] = [];
  const reports: Record<string, BatchReport> = {};
  let failure: unknown;

  beforeAll(async () => {
    worker = workerStandIn();
    telemetry = (await startFunctionsTelemetry(
      { APPLICATIONINSIGHTS_CONNECTION_STRING: breeze.connectionString(ikey), OTEL_SERVICE_NAME: 'pg-cdc-functions-test' },
      { app: worker.app, logger: startupLog },
    ))!;
    // Each line goes to the test's list and through the log hooks, as the worker sends it on.
    const logHandler =
      (batch: () => ReturnType<typeof triggerBatch>) =>
      (level: string, ...args: unknown[]) => {
        const message = args.map(String).join(' ');
        contextLogs.push(message);
        for (const hook of worker.hooks.log) hook(new LogHookContext({ invocationContext: batch().context, level: level as never, message, category: 'user' }));
      };
    const deadLetters = new BlobDeadLetterStore(container);
    const es = createEventHubBatchHandler(
      lazy(() => ({ sink: testSink(client, testRoutes(index)), deadLetters })),
      {},
      telemetry,
    );
    const history = createEventHubBatchHandler(
      lazy(() => ({ sink: new ElasticsearchHistorySink({ client, router: new Router(DEFAULT_ROUTES), index: historyIndex, replicas: 0 }), deadLetters })),
      {},
      telemetry,
    );
    // Elasticsearch is down for this one (nothing listens on port 1): the batch is to be retried.
    const down = createEventHubBatchHandler(
      lazy(() => ({ sink: testSink(new Client({ node: 'http://127.0.0.1:1' }), testRoutes(index)), deadLetters })),
      {},
      telemetry,
    );

    // Committed 2 s ago: the commit-to-write latency is at least that.
    const tsMs = Date.now() - 2000;
    const a: ReturnType<typeof triggerBatch> = triggerBatch(
      [
        hostBody(changeEvent({ after: order(1), tsMs }), 'buffer'),
        hostBody(changeEvent({ after: order(2), tsMs }), 'buffer'),
        hostBody(changeEvent({ after: order(3), tsMs }), 'buffer'),
        Buffer.from('{"truncated'), // not JSON: dead-lettered
        '', // tombstone: skipped
      ],
      { partitionId: '3', invocationId: 'inv-es-1', traceContext: traceContext('00f067aa0ba902b7'), logHandler: logHandler(() => a) },
    );
    reports.elasticsearchSink = await worker.invoke(es, a);

    const h: ReturnType<typeof triggerBatch> = triggerBatch(
      [
        hostBody(changeEvent({ table: 'bank.holding', after: holding(1, 'SP500', 10), tsMs }), 'buffer'),
        hostBody(changeEvent({ table: 'bank.holding', op: 'u', before: holding(1, 'SP500', 10), after: holding(1, 'SP500', 12), tsMs }), 'buffer'),
      ],
      {
        functionName: 'changeHistory',
        partitionId: '4',
        invocationId: 'inv-history-1',
        traceContext: traceContext('00f067aa0ba902b8'),
        logHandler: logHandler(() => h),
      },
    );
    reports.changeHistory = await worker.invoke(history, h);

    const d: ReturnType<typeof triggerBatch> = triggerBatch([hostBody(changeEvent({ after: order(9), tsMs }), 'buffer')], {
      partitionId: '5',
      invocationId: 'inv-es-down',
      traceContext: traceContext('00f067aa0ba902b9'),
      logHandler: logHandler(() => d),
    });
    failure = await worker.invoke(down, d).catch((error: unknown) => error);

    await telemetry.flush();
  }, 60_000);
  afterAll(() => telemetry.shutdown());

  const byType = (baseType: string) => breeze.envelopes.filter((e) => e.data.baseType === baseType);
  const spanOf = (invocationId: string): Envelope | undefined =>
    byType('RemoteDependencyData').find((e) => e.data.baseData.properties?.['faas.invocation_id'] === invocationId);

  it('registers with the worker as the instrumentation does: the capability, a log and a preInvocation hook, flush on appTerminate', () => {
    expect(worker.setups).toEqual([{ capabilities: { WorkerOpenTelemetryEnabled: true } }]);
    expect(worker.hooks.log).toHaveLength(1);
    expect(worker.hooks.preInvocation).toHaveLength(1);
    expect(worker.hooks.appTerminate).toHaveLength(1);
    expect(startupLog.lines).toContainEqual(expect.objectContaining({ msg: 'Application Insights export on', serviceName: 'pg-cdc-functions-test' }));
  });

  it('sends one span per batch, a child of the invocation trace, carrying the invocation id and the counts', () => {
    expect(reports.elasticsearchSink).toMatchObject({ total: 5, ok: 3, skipped: 1, deadLettered: 1, retried: 0 });
    const span = spanOf('inv-es-1');
    expect(span).toMatchObject({
      name: 'Microsoft.ApplicationInsights.RemoteDependency',
      iKey: ikey,
      tags: { 'ai.operation.id': W3C_TRACE_ID, 'ai.operation.parentId': '00f067aa0ba902b7', 'ai.cloud.role': 'pg-cdc-functions-test' },
      data: { baseData: { name: 'elasticsearchSink batch', type: 'InProc', success: true } },
    });
    expect(span?.data.baseData.properties).toMatchObject({
      'faas.invocation_id': 'inv-es-1',
      'cdc.sink': 'elasticsearchSink',
      'messaging.destination.partition.id': '3',
      'cdc.batch.written': '3',
      'cdc.batch.skipped': '1',
      'cdc.batch.dead_lettered': '1',
    });
    expect(spanOf('inv-history-1')?.tags).toMatchObject({ 'ai.operation.id': W3C_TRACE_ID, 'ai.operation.parentId': '00f067aa0ba902b8' });
    // One span per invocation, no more.
    expect(byType('RemoteDependencyData').filter((e) => e.data.baseData.name?.endsWith(' batch'))).toHaveLength(3);
  });

  it('a batch to retry is a failed span with its exception (errors are never sampled away here)', () => {
    expect(failure).toBeInstanceOf(BatchProcessingError);
    const span = spanOf('inv-es-down');
    expect(span?.data.baseData.success).toBe(false);
    expect(span?.data.baseData.properties).toMatchObject({ 'cdc.batch.retried': '1' });
    const exception = byType('ExceptionData').find((e) => e.tags?.['ai.operation.parentId'] === span?.data.baseData.id);
    expect(exception?.data.baseData.exceptions?.[0]).toMatchObject({ typeName: 'BatchProcessingError' });
    expect(exception?.data.baseData.exceptions?.[0]?.message).toMatch(/must be retried/);
  });

  it('sends the metrics per sink with the values of the reports', () => {
    const sum = (name: string, sink: string) =>
      metricPoints(breeze.envelopes, name)
        .filter((p) => p.properties['cdc.sink'] === sink)
        .reduce((total, p) => total + p.value, 0);
    const expected = {
      elasticsearchSink: { in: 5 + 1, written: 3, skipped: 1, deadlettered: 1, retried: 1 },
      changeHistory: { in: 2, written: reports.changeHistory!.ok, skipped: reports.changeHistory!.skipped, deadlettered: 0, retried: 0 },
    };
    expect(reports.changeHistory!.ok).toBe(2);
    for (const [sink, counts] of Object.entries(expected)) {
      expect({
        in: sum(SINK_METRIC_NAMES.eventsIn, sink),
        written: sum(SINK_METRIC_NAMES.eventsWritten, sink),
        skipped: sum(SINK_METRIC_NAMES.eventsSkipped, sink),
        deadlettered: sum(SINK_METRIC_NAMES.eventsDeadLettered, sink),
        retried: sum(SINK_METRIC_NAMES.eventsRetried, sink),
      }).toEqual(counts);
    }
    // Batch duration: one sample per batch (the failed one included).
    const durations = metricPoints(breeze.envelopes, SINK_METRIC_NAMES.batchDurationMs);
    expect(durations.filter((p) => p.properties['cdc.sink'] === 'elasticsearchSink').reduce((n, p) => n + (p.count ?? 0), 0)).toBe(2);
    expect(durations.filter((p) => p.properties['cdc.sink'] === 'changeHistory').reduce((n, p) => n + (p.count ?? 0), 0)).toBe(1);
    expect(durations.every((p) => (p.min ?? -1) > 0)).toBe(true);
    // Commit to write: one sample per written event, at least the 2 s since the commit, below a minute.
    const latency = metricPoints(breeze.envelopes, SINK_METRIC_NAMES.commitToWriteMs);
    expect(latency.filter((p) => p.properties['cdc.sink'] === 'elasticsearchSink').reduce((n, p) => n + (p.count ?? 0), 0)).toBe(3);
    expect(latency.filter((p) => p.properties['cdc.sink'] === 'changeHistory').reduce((n, p) => n + (p.count ?? 0), 0)).toBe(2);
    for (const p of latency) {
      expect(p.min).toBeGreaterThanOrEqual(2000);
      expect(p.max).toBeLessThan(60_000);
    }
  });

  it("sends the handler's log lines as traces in the batch span's operation", () => {
    const span = spanOf('inv-es-1')!;
    const lines = byType('MessageData').filter((e) => e.tags?.['ai.operation.parentId'] === span.data.baseData.id);
    const messages = lines.map((e) => e.data.baseData.message);
    expect(messages).toContainEqual(
      expect.stringMatching(/^elasticsearchSink: partition 3 offsets .*: 5 records, 3 ok, 1 skipped, 1 dead-lettered, 0 to retry/),
    );
    expect(messages).toContainEqual(expect.stringMatching(/^elasticsearchSink: dead-lettered partition 3 offset/));
    expect(lines.every((e) => e.tags?.['ai.operation.id'] === W3C_TRACE_ID)).toBe(true);
    expect(lines.find((e) => e.data.baseData.message?.includes('dead-lettered partition'))?.data.baseData.severityLevel).toBe('Warning');
    // Every line the handlers logged reached the endpoint.
    expect(byType('MessageData').map((e) => e.data.baseData.message)).toEqual(expect.arrayContaining(contextLogs));
  });

  it('never sends or logs the connection string', () => {
    const everything = JSON.stringify([breeze.envelopes.map((e) => ({ ...e, iKey: undefined })), startupLog.lines, contextLogs]);
    expect(everything).not.toContain(ikey);
    expect(breeze.requests.every((r) => /\/v2\.1\/track$/.test(r.path))).toBe(true);
  });
});
