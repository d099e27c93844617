/**
 * Offline KQL validation with @kusto/language-service-next: parses and analyses commands and queries
 * against a database schema built from the ADX configuration, so a wrong column, table or function
 * name is an error, not only a syntax slip. A misspelled command parses as an `UnknownCommand` node
 * without a diagnostic; `validateKql` reports those (and bad/skipped syntax nodes) too.
 */
import { createRequire } from 'node:module';
import { currentFunctionBody, latestViewQuery } from '../../../../src/shared/adx/commands.js';
import { DEFAULT_TRUNCATES_TABLE } from '../../../../src/shared/adx/config.js';
import { HISTORY_COLUMNS, tableColumns, TRUNCATE_COLUMNS } from '../../../../src/shared/adx/schema.js';
import type { AdxTableRoute, ColumnDef } from '../../../../src/shared/adx/types.js';

interface Diagnostic {
  Severity: string;
  Message: string;
  Start: number;
}
interface SyntaxElement {
  Kind: number;
}
interface KustoLanguage {
  KustoCode: {
    ParseAndAnalyze(text: string, globals: unknown): { Kind: string; Syntax: unknown; GetDiagnostics(): { Count: number; getItem(i: number): Diagnostic } };
  };
  GlobalState: { Default: { WithDatabase(db: unknown): unknown } };
  Syntax: {
    SyntaxElement: { WalkElements(root: unknown, action: (e: SyntaxElement) => void): void };
    SyntaxKind: Record<string, number>;
  };
  Symbols: {
    TableSymbol: { $ctor7: new (name: string, schema: string, description: string | null) => unknown };
    MaterializedViewSymbol: { $ctor3: new (name: string, columns: string, query: string, description: string | null) => unknown };
    FunctionSymbol: { $ctor16: new (name: string, parameterList: string, body: string, description: string | null) => unknown };
    DatabaseSymbol: { ctor: new (name: string, members: unknown[]) => unknown };
  };
}

let language: KustoLanguage | undefined;

function kusto(): KustoLanguage {
  if (language === undefined) {
    const require = createRequire(import.meta.url);
    // bridge.js defines the Bridge.NET runtime the language service runs on; both set globals.
    require('@kusto/language-service-next/bridge.min.js');
    require('@kusto/language-service-next/Kusto.Language.Bridge.min.js');
    language = (globalThis as unknown as { Kusto: { Language: KustoLanguage } }).Kusto.Language;
  }
  return language;
}

function schemaText(columns: readonly ColumnDef[]): string {
  return `(${columns.map((c) => `['${c.name}']:${c.type}`).join(', ')})`;
}

/**
 * The database as `adx:setup` leaves it: the truncates table, and the tables, history tables, views
 * and functions of every route (function bodies as the setup writes them).
 */
export function databaseFor(
  routes: readonly AdxTableRoute[],
  extraColumns: Record<string, ColumnDef[]> = {},
  truncatesTable = DEFAULT_TRUNCATES_TABLE,
): unknown {
  const K = kusto();
  const members: unknown[] = [new K.Symbols.TableSymbol.$ctor7(truncatesTable, schemaText(TRUNCATE_COLUMNS), null)];
  for (const route of routes) {
    const columns = tableColumns(route, extraColumns[route.table] ?? []);
    members.push(new K.Symbols.TableSymbol.$ctor7(route.table, schemaText(columns), null));
    if (route.historyTable !== null) members.push(new K.Symbols.TableSymbol.$ctor7(route.historyTable, schemaText(HISTORY_COLUMNS), null));
    members.push(new K.Symbols.MaterializedViewSymbol.$ctor3(route.latestView, schemaText(columns), latestViewQuery(route), null));
    members.push(new K.Symbols.FunctionSymbol.$ctor16(route.currentFunction, '()', currentFunctionBody(route, truncatesTable), null));
  }
  return K.GlobalState.Default.WithDatabase(new K.Symbols.DatabaseSymbol.ctor('cdc', members));
}

/** Errors of one command or query; empty when it is valid against `globals` (default: no schema). */
export function validateKql(text: string, globals?: unknown): string[] {
  const K = kusto();
  const code = K.KustoCode.ParseAndAnalyze(text, globals ?? K.GlobalState.Default);
  const problems: string[] = [];
  const diagnostics = code.GetDiagnostics();
  for (let i = 0; i < diagnostics.Count; i++) {
    const d = diagnostics.getItem(i);
    if (d.Severity === 'Error') problems.push(`${d.Message} (at ${d.Start}: ${JSON.stringify(text.slice(d.Start, d.Start + 30))})`);
  }
  const kinds = K.Syntax.SyntaxKind;
  const bad = new Set([kinds.UnknownCommand, kinds.BadCommand, kinds.BadQueryOperator, kinds.SkippedTokens].filter((k) => k !== undefined));
  K.Syntax.SyntaxElement.WalkElements(code.Syntax, (e) => {
    if (bad.has(e.Kind)) {
      const name = Object.keys(kinds).find((k) => kinds[k] === e.Kind) ?? String(e.Kind);
      problems.push(`${name} node: the text does not parse as a known command or operator`);
    }
  });
  return problems;
}

/** A database of plain tables (`name` → `(col:type, ...)` schema text), e.g. Application Insights' tables for the workbook and alert queries. */
export function tablesDatabase(name: string, tables: Readonly<Record<string, string>>): unknown {
  const K = kusto();
  const members = Object.entries(tables).map(([table, schema]) => new K.Symbols.TableSymbol.$ctor7(table, schema, null));
  return K.GlobalState.Default.WithDatabase(new K.Symbols.DatabaseSymbol.ctor(name, members));
}
