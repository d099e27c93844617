/**
 * `npm run dlq:replay`: dead letters back through the sink that refused them, once their cause is
 * fixed. Each dead letter (deadletter/readDeadLetters.ts) becomes the record it was — its original
 * body bytes, partition, offset, sequence number, enqueued time — and runs through `processBatch` with
 * the sink of its `functionName` from the table of sinks (`SINKS`, `depsFromEnv(env, logger, 'replay')`),
 * grouped by origin (namespace, hub, consumer group, function, partition) in sequence-number order.
 * So a replay writes with the event's own versions: Elasticsearch external versions from
 * `source.lsn` (a newer document answers 409 and stays; `external_gte` lets the event replace the
 * rejection marker at its own version), history ids with `create`, ADX tags naming exactly the
 * replayed records.
 *
 * A record that now succeeds, or that the sink now skips (e.g. superseded by a truncate), is marked
 * replayed on its blob (metadata `cdcreplayedat`, `cdcreplayoutcome`; only if the blob is unchanged
 * since it was read), and the next replay skips it. One that fails again is reported with the new
 * reason and left as it is (its blob keeps the original reason), so it can be replayed again after the
 * next fix; nothing is written to the dead-letter store. `dryRun` writes nothing: it decodes each
 * record and runs the sink's `prepare` (pure), reporting what would be replayed and what would fail
 * already there.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { processBatch } from '../batch/processBatch.js';
import type { BatchInfo, BatchReport, EventRecord, RecordOutcome } from '../batch/types.js';
import { describeError } from '../core/errors.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { MemoryDeadLetterStore } from '../deadletter/memoryDeadLetterStore.js';
import { readDeadLetters, REPLAYED_AT, type StoredDeadLetter } from '../deadletter/readDeadLetters.js';
import type { DeadLetterDocument } from '../deadletter/types.js';
import { decodeBody } from '../events/decode.js';
import { SINKS, type SinkDeps, type SinkDefinition } from './registry.js';

export const REPLAY_OUTCOME = 'cdcreplayoutcome';

export interface ReplayOptions {
  container: ContainerClient;
  /** Only dead letters stored at or after this time (`deadLetteredAt`). */
  since?: Date;
  /** Only dead letters whose reason contains this text (case-insensitive). */
  reason?: string;
  dryRun?: boolean;
  /** The sink of a function name, built once per replay (e.g. `definition.depsFromEnv(env, logger, 'replay')`). */
  sinkDeps: (definition: SinkDefinition) => SinkDeps;
  /** Records per batch (default 500). */
  batchSize?: number;
  logger?: Logger;
  now?: () => Date;
}

export interface ReplayedRecord {
  blob: string;
  functionName: string;
  partitionId: string;
  offset: string;
  /** What the original dead letter said. */
  originalReason: string;
}

export interface ReplayResult {
  /** Dead letters read (dead-letter documents only). */
  read: number;
  /** Already marked replayed: skipped. */
  alreadyReplayed: number;
  /** Left out by `since` / `reason`. */
  filteredOut: number;
  /** Written (or, with `dryRun`, would be) and marked replayed. */
  replayed: (ReplayedRecord & { outcome: 'ok' | 'skipped'; detail?: string })[];
  /** Failing again, with why (`retry`: a transient failure, try later; `deadLetter`: still refused). */
  failed: (ReplayedRecord & { status: 'retry' | 'deadLetter'; reason: string })[];
  /** Blobs in the container that are not dead letters. */
  unreadable: { blob: string; problem: string }[];
}

const byOrigin = (d: DeadLetterDocument) => [d.namespace ?? '', d.eventHubName ?? '', d.consumerGroup ?? '', d.functionName, d.partitionId].join('\u0000');

function sequenceOrder(a: StoredDeadLetter, b: StoredDeadLetter): number {
  const sa = /^\d+$/.test(a.document.sequenceNumber) ? BigInt(a.document.sequenceNumber) : -1n;
  const sb = /^\d+$/.test(b.document.sequenceNumber) ? BigInt(b.document.sequenceNumber) : -1n;
  return sa === sb ? a.name.localeCompare(b.name) : sa < sb ? -1 : 1;
}

function toRecord(letter: StoredDeadLetter): EventRecord {
  const d = letter.document;
  const record: EventRecord = { body: Buffer.from(d.body, 'base64'), partitionId: d.partitionId, offset: d.offset, sequenceNumber: d.sequenceNumber };
  if (d.enqueuedTimeUtc !== null) record.enqueuedTimeUtc = d.enqueuedTimeUtc;
  if (d.properties !== null) record.properties = d.properties;
  if (d.unplacedId !== null) record.unplacedId = d.unplacedId;
  if (d.key !== undefined) record.key = Buffer.from(d.key, 'base64');
  return record;
}

function matches(letter: StoredDeadLetter, options: ReplayOptions): boolean {
  const at = Date.parse(letter.document.deadLetteredAt);
  if (options.since !== undefined && !(at >= options.since.getTime())) return false;
  if (options.reason !== undefined && !letter.document.reason.toLowerCase().includes(options.reason.toLowerCase())) return false;
  return true;
}

export async function replayDeadLetters(options: ReplayOptions): Promise<ReplayResult> {
  const logger = options.logger ?? silentLogger;
  const result: ReplayResult = { read: 0, alreadyReplayed: 0, filteredOut: 0, replayed: [], failed: [], unreadable: [] };
  const groups = new Map<string, StoredDeadLetter[]>();
  for await (const letter of readDeadLetters(options.container)) {
    if (!('document' in letter)) {
      result.unreadable.push({ blob: letter.name, problem: letter.problem });
      continue;
    }
    result.read++;
    if (letter.metadata[REPLAYED_AT] !== undefined) {
      result.alreadyReplayed++;
      continue;
    }
    if (!matches(letter, options)) {
      result.filteredOut++;
      continue;
    }
    const origin = byOrigin(letter.document);
    groups.set(origin, [...(groups.get(origin) ?? []), letter]);
  }

  const deps = new Map<string, SinkDeps>();
  const depsOf = (functionName: string): SinkDeps => {
    let found = deps.get(functionName);
    if (found === undefined) {
      const definition = SINKS.find((s) => s.name === functionName);
      if (definition === undefined) throw new Error(`no sink is named ${functionName} (the sinks: ${SINKS.map((s) => s.name).join(', ')})`);
      found = options.sinkDeps(definition);
      deps.set(functionName, found);
    }
    return found;
  };

  const invocationId = `dlq-replay-${(options.now ?? (() => new Date()))().toISOString()}`;
  for (const letters of groups.values()) {
    letters.sort(sequenceOrder);
    for (let i = 0; i < letters.length; i += options.batchSize ?? 500) {
      const batchLetters = letters.slice(i, i + (options.batchSize ?? 500));
      const first = batchLetters[0]!.document;
      const described = (letter: StoredDeadLetter): ReplayedRecord => ({
        blob: letter.name,
        functionName: letter.document.functionName,
        partitionId: letter.document.partitionId,
        offset: letter.document.offset,
        originalReason: letter.document.reason,
      });
      let sink: SinkDeps;
      try {
        sink = depsOf(first.functionName);
      } catch (error) {
        for (const letter of batchLetters) result.failed.push({ ...described(letter), status: 'deadLetter', reason: describeError(error) });
        continue;
      }
      const records = batchLetters.map(toRecord);
      const batch: BatchInfo = {
        functionName: first.functionName,
        invocationId,
        partitionId: first.partitionId,
        firstOffset: records[0]!.offset,
        lastOffset: records[records.length - 1]!.offset,
      };
      if (first.namespace !== null) batch.namespace = first.namespace;
      if (first.eventHubName !== null) batch.eventHubName = first.eventHubName;
      if (first.consumerGroup !== null) batch.consumerGroup = first.consumerGroup;
      const outcomes = options.dryRun ? dryRunOutcomes(records, sink) : await replayBatch(records, sink, batch, logger);
      for (const [j, letter] of batchLetters.entries()) {
        const outcome = outcomes[j] ?? { status: 'retry', error: new Error('no outcome') };
        if (outcome.status === 'ok' || outcome.status === 'skipped') {
          const detail = outcome.status === 'skipped' ? outcome.reason : undefined;
          if (!options.dryRun) {
            try {
              await markReplayed(options.container, letter, outcome.status, options.now?.() ?? new Date());
            } catch (error) {
              // Written, but not marked (the blob changed since it was read, or storage failed): the next replay writes it again, harmlessly.
              result.failed.push({ ...described(letter), status: 'retry', reason: `written, but could not be marked replayed: ${describeError(error)}` });
              continue;
            }
          }
          result.replayed.push({ ...described(letter), outcome: outcome.status, ...(detail === undefined ? {} : { detail }) });
        } else {
          result.failed.push({
            ...described(letter),
            status: outcome.status,
            reason: outcome.status === 'deadLetter' ? outcome.reason : describeError(outcome.error),
          });
        }
      }
    }
  }
  return result;
}

/** Runs the batch through the batch core; what fails again is kept, not stored (the blob stays as it is). */
async function replayBatch(records: EventRecord[], deps: SinkDeps, batch: BatchInfo, logger: Logger): Promise<RecordOutcome[]> {
  let report: BatchReport | undefined;
  try {
    report = await processBatch(records, {
      sink: deps.sink,
      deadLetters: new MemoryDeadLetterStore(),
      batch,
      logger,
      pointers: deps.pointers,
      ...(deps.debezium ? { debezium: deps.debezium } : {}),
      onReport: (r) => (report = r),
    });
  } catch (error) {
    // A retry error comes after every outcome is final (onReport); anything else failed every record.
    if (report === undefined) return records.map(() => ({ status: 'retry', error }));
  }
  return report.outcomes;
}

/** What would happen without writing: each record decoded and prepared by the sink (pure steps only). */
function dryRunOutcomes(records: EventRecord[], deps: SinkDeps): RecordOutcome[] {
  return records.map((record): RecordOutcome => {
    try {
      const decoded = decodeBody(record.body, {
        ...(record.key !== undefined ? { recordKey: record.key } : {}),
        ...(deps.debezium ? { debezium: deps.debezium } : {}),
      });
      if (decoded.kind !== 'event') return { status: 'skipped', reason: decoded.kind === 'tombstone' ? 'tombstone' : 'logical message' };
      if (decoded.event.deadletter) return { status: 'ok' };
      const item = deps.sink.prepare(decoded.event, record);
      return item === null ? { status: 'skipped', reason: `not written by ${deps.sink.name}` } : { status: 'ok' };
    } catch (error) {
      return { status: 'deadLetter', reason: describeError(error) };
    }
  });
}

async function markReplayed(container: ContainerClient, letter: StoredDeadLetter, outcome: 'ok' | 'skipped', at: Date): Promise<void> {
  await container
    .getBlobClient(letter.name)
    .setMetadata(
      { ...letter.metadata, [REPLAYED_AT]: at.toISOString(), [REPLAY_OUTCOME]: outcome },
      letter.etag ? { conditions: { ifMatch: letter.etag } } : {},
    );
}
