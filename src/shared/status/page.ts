/**
 * The status page: the stages PostgreSQL → reader → hub → each sink with their counts, the lag on
 * each arrow, the end-to-end lag, a throughput chart of the last 15 minutes (inline SVG), the
 * indices and the newest dead letters with their reasons. One self-contained HTML document: no
 * script, style or font from anywhere else. Everything that comes from data (table and index names,
 * consumer groups, error messages, dead-letter reasons: hostile input) goes through `escapeHtml`.
 */
import { CHART_WINDOW_MS, type StatusSample } from './monitor.js';
import { formatBytes, formatCount, formatDuration, schemaChangeSummary, statusLine } from './summary.js';
import { isPartError, partValue, type Part, type PipelineStatus } from './types.js';

export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"'`]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A number on the page: `data-stat` names it, `data-value` holds it raw (the page test reads both). */
function stat(key: string, value: number | null | undefined, format: (n: number | null | undefined) => string = formatCount): string {
  const raw = typeof value === 'number' && Number.isFinite(value) ? String(value) : '';
  return `<b data-stat="${escapeHtml(key)}" data-value="${raw}">${escapeHtml(format(value))}</b>`;
}

function problem(part: Part<unknown>): string {
  if (!isPartError(part)) return '';
  return `<p class="${part.configured === false ? 'off' : 'err'}">${escapeHtml(part.error)}</p>`;
}

function stage(title: string, body: string, part?: Part<unknown>): string {
  const state = part === undefined ? 'ok' : isPartError(part) ? (part.configured === false ? 'off' : 'err') : 'ok';
  return `<section class="stage ${state}"><h2>${escapeHtml(title)}</h2>${body}${part === undefined ? '' : problem(part)}</section>`;
}

const arrow = (label: string) => `<div class="arrow"><span>${label}</span></div>`;

function rates(samples: StatusSample[], field: 'published' | 'indexed'): { at: number; rate: number }[] {
  const out: { at: number; rate: number }[] = [];
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1]!;
    const b = samples[i]!;
    const va = a[field];
    const vb = b[field];
    const dt = (b.at - a.at) / 1000;
    if (va === null || vb === null || dt <= 0) continue;
    out.push({ at: b.at, rate: Math.max(0, (vb - va) / dt) });
  }
  return out;
}

/** Events published and documents indexed per second, over the last 15 minutes. */
export function throughputChart(samples: StatusSample[], now: number): string {
  const width = 720;
  const height = 160;
  const pad = 32;
  const series = [
    { name: 'published/s', color: '#2563eb', points: rates(samples, 'published') },
    { name: 'indexed/s', color: '#16a34a', points: rates(samples, 'indexed') },
  ];
  const max = Math.max(1, ...series.flatMap((s) => s.points.map((p) => p.rate)));
  const x = (at: number) => pad + ((at - (now - CHART_WINDOW_MS)) / CHART_WINDOW_MS) * (width - 2 * pad);
  const y = (rate: number) => height - pad + -((rate / max) * (height - 2 * pad));
  const lines = series
    .map((s) =>
      s.points.length === 0
        ? ''
        : `<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${s.points.map((p) => `${x(p.at).toFixed(1)},${y(p.rate).toFixed(1)}`).join(' ')}"/>`,
    )
    .join('');
  const legend = series.map((s, i) => `<text x="${pad + i * 130}" y="14" fill="${s.color}">${escapeHtml(s.name)}</text>`).join('');
  const empty = series.every((s) => s.points.length === 0) ? `<text x="${width / 2 - 90}" y="${height / 2}">collecting samples…</text>` : '';
  return (
    `<svg id="throughput" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="throughput, last 15 minutes">` +
    `<line x1="${pad}" y1="${height - pad}" x2="${width - pad}" y2="${height - pad}" stroke="#999"/>` +
    `<line x1="${pad}" y1="${pad}" x2="${pad}" y2="${height - pad}" stroke="#999"/>` +
    `<text x="2" y="${pad + 4}">${escapeHtml(formatCount(max))}</text><text x="2" y="${height - pad}">0</text>` +
    `<text x="${pad}" y="${height - 8}">-15 min</text><text x="${width - pad - 24}" y="${height - 8}">now</text>` +
    `${legend}${lines}${empty}</svg>`
  );
}

const CSS = `body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#111}h1{font-size:1.3em;margin:0}h2{font-size:1em;margin:0 0 .3em}
.line{font-family:ui-monospace,monospace;background:#f4f4f5;padding:.4em .6em;border-radius:4px}
.flow{display:flex;align-items:center;margin:1em 0;flex-wrap:nowrap;overflow-x:auto}.sinks{display:flex;flex-direction:column;gap:.5em}
.sink{display:flex;align-items:center}.stage{border:2px solid #16a34a;border-radius:6px;padding:.5em .7em;min-width:11em;max-width:17em;overflow-wrap:anywhere;background:#f0fdf4}
.stage.err{border-color:#dc2626;background:#fef2f2}.stage.off{border-color:#a1a1aa;background:#fafafa}.stage p{margin:.2em 0}
.err{color:#b91c1c}.off{color:#71717a}.arrow{display:flex;align-items:center;min-width:6.5em;justify-content:center;flex:none}.stage{flex:none}
.arrow span{border-bottom:2px solid #555;padding:0 .4em;font-size:.9em}.arrow span::after{content:"▶";margin-left:.2em;color:#555}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.25em .5em;text-align:left;vertical-align:top}
td.reason{max-width:48em;white-space:pre-wrap;word-break:break-word;font-family:ui-monospace,monospace;font-size:.9em}`;

export function renderStatusPage(status: PipelineStatus, samples: StatusSample[], options: { refreshSeconds?: number } = {}): string {
  const pg = partValue(status.postgres);
  const reader = partValue(status.reader);
  const hub = partValue(status.hub);
  const es = partValue(status.elasticsearch);
  const dl = partValue(status.deadLetters);

  const pgStage = stage(
    'PostgreSQL',
    pg
      ? `<p>slot ${escapeHtml(pg.slot.name)} ${pg.slot.active ? 'active' : '<span class="err">inactive</span>'}</p>` +
          `<p>wal_status ${escapeHtml(pg.slot.walStatus ?? '?')}, retained ${stat('postgres.slot.retainedBytes', pg.slot.retainedBytes, formatBytes)}</p>` +
          `<p>safe_wal_size ${pg.slot.safeWalSizeBytes === null ? 'unlimited' : stat('postgres.slot.safeWalSizeBytes', pg.slot.safeWalSizeBytes, formatBytes)}</p>` +
          `<p>publication ${pg.publication ? `${escapeHtml(pg.publication.name)} (${pg.publication.allTables ? 'all tables' : `${stat('postgres.publication.tables', pg.publication.tables)} tables`})` : '<span class="err">missing</span>'}</p>`
      : '',
    status.postgres,
  );
  const readerStage = stage(
    'reader',
    reader
      ? `<p>${stat('reader.changes', reader.changes)} changes</p><p>${stat('reader.changesPerSec', reader.changesPerSec)} /s</p>` +
          `<p>snapshot ${stat('reader.snapshotRows', reader.snapshotRows)} rows${reader.snapshotDone ? ' (done)' : ''}</p><p>claim checks ${stat('reader.claimChecked', reader.claimChecked)}</p>` +
          `<p>schema changes ${stat('reader.schemaChanges', reader.schemaChanges)}</p>` +
          reader.incrementalSnapshots
            .map(
              (i) =>
                `<p>incremental snapshot ${escapeHtml(i.table)}: ${i.rowsDone}${i.done ? ' rows (done)' : ` of ~${i.rowsTotal} rows, ${i.rowsPerSec}/s, ETA ${i.etaSec ?? '?'} s`}</p>`,
            )
            .join('') +
          // The latest few, newest first: table and column names are data (escaped).
          (reader.recentSchemaChanges.length > 0
            ? `<ul class="schema-changes">${reader.recentSchemaChanges
                .slice(-3)
                .reverse()
                .map((c) => `<li>${escapeHtml(c.at ?? '?')} ${escapeHtml(schemaChangeSummary(c))}</li>`)
                .join('')}</ul>`
            : '')
      : '',
    status.reader,
  );
  const hubStage = stage(
    hub ? `hub (${hub.kind})` : 'hub',
    hub
      ? `<p>${escapeHtml(hub.topic)}</p><p>${stat('hub.published', hub.published)} events</p><p>${stat('hub.partitions', hub.partitions.length)} partitions</p>`
      : '',
    status.hub,
  );

  const sinkRows = (hub?.groups ?? []).map((g) => {
    if (isPartError(g)) return `<div class="sink">${arrow('?')}${stage('sink', '', g)}</div>`;
    let body = `<p>group ${escapeHtml(g.consumerGroup)}</p>`;
    if (g.sink === 'elasticsearchSink' && es) body += `<p>${stat('elasticsearch.documents', es.documents)} documents</p>`;
    if (g.sink === 'changeHistory' && es) body += `<p>${stat('elasticsearch.history.documents', es.history.documents)} history rows</p>`;
    return `<div class="sink">${arrow(`lag ${stat(`hub.groups.${g.sink}.lag`, g.lag)}`)}${stage(g.sink, body)}</div>`;
  });
  const sinks =
    sinkRows.length > 0 ? `<div class="sinks">${sinkRows.join('')}</div>` : `<div class="sinks">${arrow('')}${stage('sinks', '', status.elasticsearch)}</div>`;

  const flow =
    `<div class="flow">${pgStage}${arrow(`lag ${stat('postgres.slot.lagBytes', pg?.slot.lagBytes, formatBytes)}`)}${readerStage}` +
    `${arrow(`${stat('reader.inflightBytes', reader?.inflightBytes, formatBytes)} in flight`)}${hubStage}${sinks}</div>`;

  const e2e = status.endToEnd;
  const endToEnd =
    `<p>end-to-end lag ${stat('endToEnd.lagMs', e2e.lagMs, formatDuration)}: newest committed ${escapeHtml(e2e.newestCommitted ?? '?')}` +
    `${e2e.newestCommittedSource === 'hub' ? ' (the hub’s publish time)' : ''}, newest indexed ${escapeHtml(e2e.newestIndexed ?? '?')}</p>`;

  const indices = es
    ? `<table><tr><th>table</th><th>index</th><th>documents</th><th>live alias</th><th>live documents</th><th>newest change</th></tr>` +
      es.indices
        .map(
          (i, n) =>
            `<tr><td>${escapeHtml(i.table)}</td><td>${escapeHtml(i.index)}${i.exists ? '' : ' <span class="err">(missing)</span>'}</td>` +
            `<td>${stat(`elasticsearch.indices.${n}.documents`, i.documents)}</td><td>${escapeHtml(i.liveAlias)}</td>` +
            `<td>${stat(`elasticsearch.indices.${n}.liveDocuments`, i.liveDocuments)}</td><td>${escapeHtml(i.newestCommitTime ?? '-')}</td></tr>`,
        )
        .join('') +
      `<tr><td>(change history)</td><td>${escapeHtml(es.history.index)}</td><td>${stat('elasticsearch.history.documents.table', es.history.documents)}</td><td></td><td></td><td></td></tr></table>`
    : problem(status.elasticsearch);

  const deadLetters = dl
    ? dl.containers
        .map(
          (c, n) =>
            `<h3>${escapeHtml(c.container)}: ${stat(`deadLetters.containers.${n}.count`, c.count)}${c.truncated ? '+' : ''} dead letters` +
            `${
              Object.keys(c.bySink).length > 0
                ? ` (${Object.entries(c.bySink)
                    .map(([sink, n]) => `${escapeHtml(sink)} ${escapeHtml(n)}`)
                    .join(', ')})`
                : ''
            }</h3>` +
            (c.newest.length === 0
              ? ''
              : `<table id="dead-letters"><tr><th>when</th><th>sink</th><th>partition / offset</th><th>reason</th></tr>` +
                c.newest
                  .map(
                    (e) =>
                      `<tr><td>${escapeHtml(e.deadLetteredAt ?? '?')}</td><td>${escapeHtml(e.sink)}</td><td>${escapeHtml(e.partition ?? '?')} / ${escapeHtml(e.offset ?? '?')}</td>` +
                      `<td class="reason">${escapeHtml(e.reason)}</td></tr>`,
                  )
                  .join('') +
                `</table>`),
        )
        .join('')
    : problem(status.deadLetters);

  const collected = Date.parse(status.collectedAt);
  const refresh = options.refreshSeconds ?? 10;
  return (
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">` +
    (refresh > 0 ? `<meta http-equiv="refresh" content="${refresh}">` : '') +
    `<title>pg-cdc status</title><style>${CSS}</style></head><body>` +
    `<h1>pg-cdc pipeline</h1><p>collected ${escapeHtml(status.collectedAt)} · <a href="status">JSON</a></p>` +
    `<p class="line" id="status-line">${escapeHtml(statusLine(status))}</p>${flow}${endToEnd}` +
    `<h2>throughput, last 15 minutes</h2>${throughputChart(samples, Number.isFinite(collected) ? collected : Date.now())}` +
    `<h2>indices</h2>${indices}<h2>dead letters</h2>${deadLetters}</body></html>`
  );
}
