/** The pipeline's status (README "Status"): the model, its collection, its forms (JSON, page, one line, terminal). */
export * from './types.js';
export { collectStatus, endToEnd, sinkGroupsFromEnv, statusSettingsFromEnv, statusSourcesFromEnv, type Source, type StatusSources } from './collect.js';
export { StatusMonitor, SampleRing, type StatusSample } from './monitor.js';
export { escapeHtml, renderStatusPage } from './page.js';
export { startStatusServer, statusFromEnv, statusRequestHandler, type EnvStatus } from './server.js';
export { statusLine, statusText, type LineExtras } from './summary.js';
