// Starts the real test services unless they already run (from `npm run services:up`) or are given
// by the environment, and hands their endpoints to the test workers through process.env.
import { up } from './services.mjs';

export default async function globalSetup() {
  const { env, startedNow } = await up();
  for (const [k, v] of Object.entries(env)) process.env[k] = v;
  // globalTeardown stops only what this run started; services from `services:up` stay up.
  globalThis.__PG_CDC_STARTED__ = startedNow;
}
