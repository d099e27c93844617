/**
 * What runs on timers beside the change stream: the metrics tick (every second), the slot lag query
 * (every 10 s), the optional heartbeat message, the metrics log line (every minute) and the broker
 * probe (every 10 s), and the publication check (every `CDC_PUBLICATION_REFRESH_MS`). The timers are unref'd, so they never keep the process alive; `stop()` clears
 * them all.
 */
import type { Query } from '../shared/events/typeRegistry.js';
import type { Logger } from '../shared/core/logger.js';
import { errorFields } from '../shared/core/logger.js';
import type { ReaderMetrics } from './metrics.js';
import type { AckTracker } from './publish/ackTracker.js';
import type { BrokerCheck } from './publish/brokerCheck.js';
import type { Pipeline } from './publish/pipeline.js';
import type { PublicationKeeper } from './replication/publication.js';

export interface MonitorDeps {
  metrics: ReaderMetrics;
  pipeline: Pipeline;
  tracker: AckTracker;
  /** The reader's own (non-replication) connection. */
  query: Query;
  slotName: string;
  /** 0 = no heartbeat. */
  heartbeatIntervalMs: number;
  log: Logger;
  /** Probed so that a broker gone away shows (on /readyz, in the log) even while nothing is sent. */
  broker: BrokerCheck;
  onBrokerReachable: (reachable: boolean) => void;
  /** Keeps the publication current every `refreshMs` (0 = never: start-up only). */
  publication: { keeper: PublicationKeeper; refreshMs: number };
}

export interface Monitors {
  stop(): void;
}

export const BROKER_PROBE_INTERVAL_MS = 10_000;

const SLOT_LAG_SQL =
  'SELECT (pg_catalog.pg_current_wal_lsn() - confirmed_flush_lsn)::bigint::text AS lag FROM pg_catalog.pg_replication_slots WHERE slot_name = $1';

export function startMonitors(deps: MonitorDeps): Monitors {
  const { metrics, pipeline, tracker, query, log } = deps;
  const timers: NodeJS.Timeout[] = [];
  const every = (ms: number, fn: () => void) => timers.push(setInterval(fn, ms).unref());

  every(1000, () => {
    metrics.inflightBytes = pipeline.bytesInFlight;
    const oldest = tracker.oldestOpen;
    metrics.slotLagSeconds = oldest && oldest.commitTimeMs > 0 ? (Date.now() - oldest.commitTimeMs) / 1000 : 0;
    metrics.tick();
  });
  every(10_000, () => {
    query(SLOT_LAG_SQL, [deps.slotName])
      .then((r) => {
        const lag = r.rows[0]?.lag;
        metrics.slotLagBytes = typeof lag === 'string' ? Number(lag) : null;
      })
      .catch((err: unknown) => log.warn('slot lag query failed', errorFields(err)));
  });
  if (deps.heartbeatIntervalMs > 0) {
    every(deps.heartbeatIntervalMs, () => {
      // A transactional logical message: an empty transaction the reader acknowledges, so the slot
      // advances even when no captured table changes while other databases write WAL.
      query("SELECT pg_catalog.pg_logical_emit_message(true, 'pg-cdc-heartbeat', now()::text)", []).catch((err: unknown) =>
        log.warn('heartbeat failed', errorFields(err)),
      );
    });
  }
  every(60_000, () => log.info('reader metrics', metrics.toJSON()));
  // New qualifying tables are added, members that lost their identity removed (refresh never throws).
  if (deps.publication.refreshMs > 0) every(deps.publication.refreshMs, () => void deps.publication.keeper.refresh());
  let probing = false;
  let reachable = true;
  every(BROKER_PROBE_INTERVAL_MS, () => {
    if (probing) return; // a probe can take the client's connect timeout: never two at once
    probing = true;
    deps.broker
      .check([])
      .then(
        () => {
          if (reachable) return;
          reachable = true;
          log.info('broker reachable again');
          deps.onBrokerReachable(true);
        },
        (err: unknown) => {
          // Logged when it goes away, not every probe: the error names the broker and the fix.
          if (!reachable) return;
          reachable = false;
          log.warn('broker unreachable', errorFields(err));
          deps.onBrokerReachable(false);
        },
      )
      .finally(() => (probing = false));
  });

  return {
    stop: () => {
      for (const t of timers.splice(0)) clearInterval(t);
    },
  };
}
