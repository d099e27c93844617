/** A row trigger that records every change of a table in order, so tests see what the generator really did. */
import type pg from 'pg';

export interface AuditRow {
  op: 'INSERT' | 'UPDATE' | 'DELETE';
  old: Record<string, unknown> | null;
  new: Record<string, unknown> | null;
}

/** Creates `<schema>.audit` and the trigger on `table` (`schema.table`). */
export async function addAudit(client: pg.ClientBase, table: string): Promise<void> {
  const [schema] = table.split('.');
  await client.query(`
    CREATE TABLE ${schema}.audit (seq bigserial PRIMARY KEY, op text NOT NULL, old jsonb, new jsonb);
    CREATE FUNCTION ${schema}.audit() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO ${schema}.audit (op, old, new)
      VALUES (TG_OP, CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END, CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END);
      RETURN NULL;
    END $$;
    CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON ${table} FOR EACH ROW EXECUTE FUNCTION ${schema}.audit();`);
}

export async function auditRows(client: pg.ClientBase, table: string): Promise<AuditRow[]> {
  const [schema] = table.split('.');
  return (await client.query<AuditRow>(`SELECT op, old, new FROM ${schema}.audit ORDER BY seq`)).rows;
}

export function countOps(rows: readonly AuditRow[]): { inserts: number; updates: number; deletes: number } {
  return {
    inserts: rows.filter((r) => r.op === 'INSERT').length,
    updates: rows.filter((r) => r.op === 'UPDATE').length,
    deletes: rows.filter((r) => r.op === 'DELETE').length,
  };
}
