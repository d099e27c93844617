/**
 * Pointer events: the reader puts an event too large for the hub (1 MB) in a Blob and publishes a
 * small pointer (same key, source and LSN, `deadletter: { container, blob, bytes }`, row images null).
 * The sinks read the full event back before doing anything else, so large rows are written like any
 * other. A Blob that does not exist (or does not hold an event) is a permanent failure for that record;
 * storage unavailable is transient.
 */
import { CdcError, PermanentRecordError, TransientSinkError } from '../core/errors.js';
import { decodeBody, type DecodeOptions } from '../events/decode.js';
import type { ChangeEvent } from '../events/changeEvent.js';
import { outcomeOfIoError, outcomeOfPureStepError } from './outcomes.js';
import type { RecordOutcome } from './types.js';

export interface PointerResolver {
  /** The Blob's bytes; throws `PermanentRecordError` when it does not exist, a retryable error otherwise. */
  fetch(pointer: { container: string; blob: string }): Promise<Buffer>;
}

const CONCURRENCY = 8;

/** `decode`: per record, how its full event is decoded (the record key and the Debezium options, for Debezium's events). */
export async function resolvePointers(
  events: (ChangeEvent | undefined)[],
  outcomes: RecordOutcome[],
  resolver: PointerResolver | undefined,
  decode: (index: number) => DecodeOptions = () => ({}),
): Promise<void> {
  const pending = events.flatMap((event, index) => (event?.deadletter ? [index] : []));
  if (pending.length === 0) return;
  const work = async (index: number): Promise<void> => {
    const pointer = events[index]?.deadletter;
    if (!pointer) return;
    events[index] = undefined;
    // I/O: reading the Blob may work next time (a missing Blob says it cannot: POINTER_BROKEN).
    let bytes: Buffer;
    try {
      if (!resolver) throw new TransientSinkError(`Pointer event (${pointer.container}/${pointer.blob}) but no pointer store is configured`);
      bytes = await resolver.fetch(pointer);
    } catch (error) {
      outcomes[index] = outcomeOfIoError(
        error instanceof CdcError ? error : new TransientSinkError(`Could not read pointer blob ${pointer.container}/${pointer.blob}`, error),
      );
      return;
    }
    // Pure: the same bytes decode the same way on every attempt.
    const notAnEvent = (cause?: unknown) =>
      new PermanentRecordError('POINTER_BROKEN', `Blob ${pointer.container}/${pointer.blob} does not hold a full change event`, cause);
    try {
      let decoded;
      try {
        decoded = decodeBody(bytes, decode(index));
      } catch (error) {
        throw notAnEvent(error);
      }
      if (decoded.kind !== 'event' || decoded.event.deadletter) throw notAnEvent();
      events[index] = decoded.event;
    } catch (error) {
      outcomes[index] = outcomeOfPureStepError(error);
    }
  };
  for (let i = 0; i < pending.length; i += CONCURRENCY) await Promise.all(pending.slice(i, i + CONCURRENCY).map(work));
}
