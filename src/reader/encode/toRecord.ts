/**
 * ChangeEvent → Kafka record, with the dead-letter path for events the hub cannot take.
 */
import type { ChangeEvent } from '../../shared/events/changeEvent.js';
import type { Logger } from '../../shared/core/logger.js';
import { errorFields } from '../../shared/core/logger.js';
import type { DeadLetterStore } from '../publish/deadLetter.js';
import { deadLetterBlobName, pointerEvent } from '../publish/deadLetter.js';
import type { OutRecord } from '../publish/publisher.js';
import { recordKey, serializeEvent, topicFor } from './envelope.js';

export interface RecordBuilderOptions {
  topic: string;
  topicTemplate: string | null;
  prefix: string;
  maxMessageBytes: number;
}

export class RecordBuilder {
  deadLettered = 0;
  constructor(
    private readonly opts: RecordBuilderOptions,
    private readonly deadLetter: DeadLetterStore | null,
    private readonly log: Logger,
    private readonly isStopping: () => boolean = () => false,
  ) {}

  /** Synchronous fast path; returns null when the event is too large (use `buildLarge`). */
  tryBuild(event: ChangeEvent): OutRecord | null {
    // The key's JSON serves as the record key and inside the value (serialised once).
    const keyJson = event.key === null ? null : JSON.stringify(event.key);
    const value = Buffer.from(serializeEvent(event, keyJson));
    const key = keyJson === null ? undefined : Buffer.from(keyJson);
    // Record overhead (headers, lengths, batch header) stays well under 1 KiB.
    if (value.length + (key?.length ?? 0) + 1024 > this.opts.maxMessageBytes) return null;
    return { topic: this.topic(event), key, value };
  }

  /** Writes the full event to the dead-letter store (retrying until it succeeds) and returns the pointer record. */
  async buildLarge(event: ChangeEvent): Promise<OutRecord> {
    const body = Buffer.from(JSON.stringify(event));
    if (!this.deadLetter) {
      throw new Error(
        `event of ${body.length} bytes exceeds KAFKA_MAX_MESSAGE_BYTES and no dead-letter store is configured (set AZURE_STORAGE_CONNECTION_STRING or DEADLETTER_ACCOUNT_URL)`,
      );
    }
    const name = deadLetterBlobName(event);
    for (let attempt = 1; ; attempt++) {
      try {
        const where = await this.deadLetter.put(name, body);
        this.deadLettered++;
        this.log.warn('event too large for the hub: stored in the dead-letter container, pointer published', {
          bytes: body.length,
          schema: event.source.schema,
          table: event.source.table,
          lsn: event.source.lsn,
          blob: where.blob,
        });
        const pointer = pointerEvent(event, where, body.length);
        return { topic: this.topic(event), key: recordKey(event.key), value: Buffer.from(JSON.stringify(pointer)) };
      } catch (err) {
        if (this.isStopping()) throw err;
        const delay = Math.min(30_000, 250 * 2 ** Math.min(attempt, 7));
        this.log.warn('dead-letter write failed; retrying', { ...errorFields(err), attempt, retryInMs: delay });
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  async build(event: ChangeEvent): Promise<OutRecord> {
    return this.tryBuild(event) ?? (await this.buildLarge(event));
  }

  private topic(event: ChangeEvent): string {
    return topicFor(event.source.schema, event.source.table, { topic: this.opts.topic, template: this.opts.topicTemplate, prefix: this.opts.prefix });
  }
}
