import { deadLetterName, toDeadLetterDocument } from './deadLetterDocument.js';
import type { DeadLetter, DeadLetterDocument, DeadLetterStore } from './types.js';

/** In-memory store, for tests and local runs. */
export class MemoryDeadLetterStore implements DeadLetterStore {
  readonly documents = new Map<string, DeadLetterDocument>();

  put(letter: DeadLetter): Promise<void> {
    this.documents.set(deadLetterName(letter), toDeadLetterDocument(letter));
    return Promise.resolve();
  }
}
