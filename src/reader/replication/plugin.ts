/**
 * pgoutput through pg-logical-replication, with two changes to its plugin:
 * - column values stay PostgreSQL text (the reader decodes them itself, exactly: pg's global type
 *   parsers would turn numeric/int8/timestamptz into lossy JS values);
 * - START_REPLICATION quotes the slot and publication names.
 */
import { PgoutputPlugin } from 'pg-logical-replication';
import type { Pgoutput } from 'pg-logical-replication';
import type { Client } from 'pg';
import { quoteIdent, quoteLiteral } from './sql.js';

const identity = (raw: unknown): unknown => raw;

export class TextPgoutputPlugin extends PgoutputPlugin {
  constructor(private readonly publication: string) {
    super({ protoVersion: 1, publicationNames: [publication], messages: true });
  }

  override parse(buffer: Buffer): Pgoutput.Message {
    const msg = super.parse(buffer);
    if (msg.tag === 'relation') for (const c of msg.columns) c.parser = identity;
    return msg;
  }

  override start(client: Client, slotName: string, lastLsn: string): Promise<unknown> {
    const options = [`proto_version '1'`, `publication_names ${quoteLiteral(quoteIdent(this.publication))}`, `messages 'true'`];
    return client.query(`START_REPLICATION SLOT ${quoteIdent(slotName)} LOGICAL ${lastLsn} (${options.join(', ')})`);
  }
}
