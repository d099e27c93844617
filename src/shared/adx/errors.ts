/**
 * ADX failures as typed errors. Transient (network, throttling, 5xx, authentication hiccups) → retry
 * the invocation; permanent (the service rejected the request: schema, mapping, bad command) →
 * `canRetry: false`, naming the table so the core can dead-letter its rows.
 */
import { CdcError } from '../core/errors.js';

export class AdxSinkError extends CdcError {
  /** ADX table the failure belongs to (undefined for failures before a table was chosen). */
  readonly table: string | undefined;
  readonly sourceTable: string | undefined;
  /** HTTP status, when the failure came with one. */
  readonly status: number | undefined;

  constructor(message: string, options: { canRetry: boolean; table?: string; sourceTable?: string; status?: number; cause?: unknown }) {
    super(options.canRetry ? 'SINK_UNAVAILABLE' : 'REJECTED_BY_SINK', message, { canRetry: options.canRetry, cause: options.cause });
    this.table = options.table;
    this.sourceTable = options.sourceTable;
    this.status = options.status;
  }
}

const TRANSIENT_NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  'ECONNABORTED',
  'ERR_NETWORK',
  'ERR_SOCKET_CONNECTION_TIMEOUT',
  'UND_ERR_SOCKET',
  'REQUEST_SEND_ERROR',
]);

interface Inspected {
  status: number | undefined;
  code: string | undefined;
  permanentFlag: boolean;
  serviceMessage: string | undefined;
  name: string;
  message: string;
}

function inspect(error: unknown): Inspected {
  const e = (typeof error === 'object' && error !== null ? error : {}) as Record<string, unknown>;
  const response = e.response as { status?: unknown; data?: unknown } | undefined;
  const status =
    typeof response?.status === 'number'
      ? response.status
      : typeof e.statusCode === 'number'
        ? e.statusCode
        : typeof e.status === 'number'
          ? e.status
          : undefined;
  let serviceMessage: string | undefined;
  const data = response?.data as { error?: { '@message'?: unknown; message?: unknown } } | undefined;
  if (data && typeof data === 'object' && data.error) {
    const m = data.error['@message'] ?? data.error.message;
    if (typeof m === 'string') serviceMessage = m.slice(0, 500);
  }
  const inner = e.inner;
  const innerStatus = typeof inner === 'object' && inner !== null ? inspect(inner).status : undefined;
  return {
    status: status ?? innerStatus,
    code: typeof e.code === 'string' ? e.code : undefined,
    permanentFlag: e['@permanent'] === true,
    serviceMessage,
    name: error instanceof Error ? error.name : typeof error,
    message: error instanceof Error ? error.message : String(error),
  };
}

/** Whether a failure from azure-kusto-data / azure-kusto-ingest / @azure/storage-* can succeed on retry. */
export function isTransient(error: unknown): boolean {
  const i = inspect(error);
  if (i.permanentFlag) return false;
  if (i.name === 'ThrottlingError') return true;
  if (i.name === 'IngestionPropertiesValidationError') return false;
  if (i.status !== undefined) {
    // 401/403 are retried: a misconfigured identity should hold the checkpoint, not dead-letter data.
    return i.status === 401 || i.status === 403 || i.status === 408 || i.status === 429 || i.status >= 500;
  }
  if (i.code !== undefined && TRANSIENT_NETWORK_CODES.has(i.code)) return true;
  // Unknown failures (the ingest client's "Failed to upload to blob." has no cause) are retried:
  // retrying loses nothing, dead-lettering might.
  return true;
}

/** Wraps any failure of an ADX call into an `AdxSinkError` with a message safe for logs. */
export function toAdxSinkError(error: unknown, what: string, context: { table?: string; sourceTable?: string } = {}): AdxSinkError {
  if (error instanceof AdxSinkError) return error;
  const i = inspect(error);
  const transient = isTransient(error);
  const detail = [i.status !== undefined ? `HTTP ${i.status}` : undefined, i.code, i.serviceMessage ?? i.message].filter(Boolean).join(': ');
  const table = context.table !== undefined ? ` (table ${context.table})` : '';
  return new AdxSinkError(`${what}${table} failed${transient ? ' (transient)' : ' (rejected)'}: ${detail}`, {
    canRetry: transient,
    table: context.table,
    sourceTable: context.sourceTable,
    status: i.status,
    cause: error,
  });
}
