import { down } from './services.mjs';

export default async function globalTeardown() {
  const started = globalThis.__PG_CDC_STARTED__ ?? [];
  if (started.length > 0) await down({ only: started });
}
