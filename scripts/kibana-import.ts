/**
 * `npm run kibana:import -- [file]`: imports the Kibana saved objects (default
 * deploy/dashboards/kibana.ndjson) with `POST <KIBANA_URL>/api/saved_objects/_import?overwrite=true`,
 * a multipart/form-data body whose `file` part is the NDJSON, and the `kbn-xsrf` header Kibana
 * requires. Authentication: `KIBANA_API_KEY` (header `Authorization: ApiKey ...`) or
 * `KIBANA_USERNAME` + `KIBANA_PASSWORD` (basic), or none. Overwrite makes a re-import idempotent:
 * the objects have stable ids. Prints what Kibana imported; exits 1 with Kibana's errors per object.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { pathToFileURL } from 'node:url';
import { getOptionalString, getUrl, type Env } from '../src/shared/core/env.js';
import { ConfigError, describeError } from '../src/shared/core/errors.js';
import { redact } from '../src/shared/core/redact.js';
import { KIBANA_FILE } from './dashboards.js';

interface ImportResponse {
  success?: boolean;
  successCount?: number;
  successResults?: { type: string; id: string; meta?: { title?: string } }[];
  errors?: { type: string; id: string; title?: string; error?: { type?: string; message?: string; references?: { type: string; id: string }[] } }[];
  message?: string;
}

function authorization(env: Env): string | undefined {
  const apiKey = getOptionalString(env, 'KIBANA_API_KEY');
  if (apiKey !== undefined) return `ApiKey ${apiKey}`;
  const user = getOptionalString(env, 'KIBANA_USERNAME');
  const password = getOptionalString(env, 'KIBANA_PASSWORD');
  if (user === undefined && password === undefined) return undefined;
  if (user === undefined || password === undefined) {
    throw new ConfigError(
      user === undefined ? 'KIBANA_USERNAME' : 'KIBANA_PASSWORD',
      'both KIBANA_USERNAME and KIBANA_PASSWORD (or KIBANA_API_KEY)',
      undefined,
    );
  }
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

export async function importSavedObjects(env: Env, file: string, out: (line: string) => void): Promise<boolean> {
  const base = getUrl(env, 'KIBANA_URL', 'http://localhost:5601').replace(/\/+$/, '');
  const auth = authorization(env);
  const form = new FormData();
  form.append('file', new Blob([readFileSync(file)], { type: 'application/ndjson' }), basename(file));
  const response = await fetch(`${base}/api/saved_objects/_import?overwrite=true`, {
    method: 'POST',
    headers: { 'kbn-xsrf': 'true', ...(auth ? { authorization: auth } : {}) },
    body: form,
  });
  const text = await response.text();
  let body: ImportResponse;
  try {
    body = JSON.parse(text) as ImportResponse;
  } catch {
    body = { message: text.slice(0, 500) };
  }
  if (!response.ok) {
    out(`kibana:import: ${base} answered ${response.status}: ${body.message ?? text.slice(0, 500)}`);
    return false;
  }
  for (const r of body.successResults ?? []) out(`imported ${r.type} ${r.id}${r.meta?.title ? ` (${r.meta.title})` : ''}`);
  for (const e of body.errors ?? []) {
    const missing = (e.error?.references ?? []).map((r) => `${r.type} ${r.id}`).join(', ');
    out(
      `failed ${e.type} ${e.id}${e.title ? ` (${e.title})` : ''}: ${e.error?.type ?? 'error'}${e.error?.message ? ` ${e.error.message}` : ''}${missing ? ` missing ${missing}` : ''}`,
    );
  }
  out(`kibana:import: ${body.successCount ?? 0} objects imported into ${base}${body.success === true ? '' : ', with errors'}`);
  return body.success === true;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const secrets = [process.env.KIBANA_API_KEY, process.env.KIBANA_PASSWORD].filter((s): s is string => typeof s === 'string' && s.length > 0);
  const out = (line: string) => process.stdout.write(`${redact(line, secrets)}\n`);
  try {
    if (!(await importSavedObjects(process.env, process.argv[2] ?? KIBANA_FILE, out))) process.exitCode = 1;
  } catch (error) {
    process.stderr.write(`kibana:import failed: ${redact(describeError(error), secrets)}\n`);
    process.exitCode = 1;
  }
}
