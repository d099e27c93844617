/**
 * The Application Insights connection string (`APPLICATIONINSIGHTS_CONNECTION_STRING`), validated the
 * same way for every process that exports telemetry (the reader, the Functions app): it needs
 * `InstrumentationKey=<lower-case GUID>` (the exporter rejects anything else) and an
 * `IngestionEndpoint` that is an http(s) URL when given. Unset means telemetry is off. The value is a
 * secret (the key lets anyone write into the resource): errors never show it.
 */
import { getOptionalString, type Env } from './env.js';
import { ConfigError } from './errors.js';

export const APP_INSIGHTS_CONNECTION_STRING = 'APPLICATIONINSIGHTS_CONNECTION_STRING';

export function appInsightsConnectionString(env: Env): string | undefined {
  const name = APP_INSIGHTS_CONNECTION_STRING;
  const cs = getOptionalString(env, name);
  if (cs === undefined) return undefined;
  const fields = new Map(
    cs
      .split(';')
      .map((kv) => kv.trim())
      .filter(Boolean)
      .map((kv) => {
        const i = kv.indexOf('=');
        return [
          kv
            .slice(0, i < 0 ? kv.length : i)
            .trim()
            .toLowerCase(),
          i < 0 ? '' : kv.slice(i + 1).trim(),
        ] as const;
      }),
  );
  const ikey = fields.get('instrumentationkey') ?? '';
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(ikey)) {
    throw new ConfigError(name, 'an Application Insights connection string with InstrumentationKey=<lower-case GUID>', cs, { secret: true });
  }
  const ingestion = fields.get('ingestionendpoint');
  if (ingestion !== undefined && !/^https?:\/\/[^\s/]+/i.test(ingestion)) {
    throw new ConfigError(name, 'an IngestionEndpoint=https://... in the connection string', cs, { secret: true });
  }
  return cs;
}
