/**
 * ChangeEvent → Kafka record, with the claim-check path for events the hub cannot take (publish/claimCheck.ts).
 */
import type { ChangeEvent } from '../../shared/events/changeEvent.js';
import type { Logger } from '../../shared/core/logger.js';
import { errorFields } from '../../shared/core/logger.js';
import type { ClaimCheckStore } from '../publish/claimCheck.js';
import { claimCheckBlobName, claimCheckPointer } from '../publish/claimCheck.js';
import type { OutRecord } from '../publish/publisher.js';
import { recordKey, serializeEvent, topicFor } from './envelope.js';

export interface RecordBuilderOptions {
  topic: string;
  topicTemplate: string | null;
  prefix: string;
  maxMessageBytes: number;
  /** Called for every event published as a claim-check pointer (metrics). */
  onClaimCheck?: () => void;
}

export class RecordBuilder {
  constructor(
    private readonly opts: RecordBuilderOptions,
    private readonly claimCheck: ClaimCheckStore | null,
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

  /** Writes the full event to the claim-check store (retrying until it succeeds) and returns the pointer record. */
  async buildLarge(event: ChangeEvent): Promise<OutRecord> {
    const body = Buffer.from(JSON.stringify(event));
    if (!this.claimCheck) {
      throw new Error(
        `event of ${body.length} bytes exceeds KAFKA_MAX_MESSAGE_BYTES and no claim-check store is configured (set AZURE_STORAGE_CONNECTION_STRING, DEADLETTER_CONNECTION_STRING or DEADLETTER_ACCOUNT_URL)`,
      );
    }
    const name = claimCheckBlobName(event);
    for (let attempt = 1; ; attempt++) {
      try {
        const where = await this.claimCheck.put(name, body);
        this.opts.onClaimCheck?.();
        this.log.warn('event too large for the hub: stored as a claim check, pointer published', {
          bytes: body.length,
          schema: event.source.schema,
          table: event.source.table,
          lsn: event.source.lsn,
          blob: where.blob,
        });
        const pointer = claimCheckPointer(event, where, body.length);
        return { topic: this.topic(event), key: recordKey(event.key), value: Buffer.from(JSON.stringify(pointer)) };
      } catch (err) {
        if (this.isStopping()) throw err;
        const delay = Math.min(30_000, 250 * 2 ** Math.min(attempt, 7));
        this.log.warn('claim-check write failed; retrying', { ...errorFields(err), attempt, retryInMs: delay });
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
