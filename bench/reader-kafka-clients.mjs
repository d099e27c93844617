// Measures the two candidate Kafka clients the reader could use, on the same broker, the way the
// reader uses them: one produce request in flight at a time (per-key order without idempotence),
// acks=all. Writes bench/results/reader-kafka-clients.json.
// Usage: node bench/reader-kafka-clients.mjs   (reads KAFKA_BROKERS or .services.env)
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { Producer, stringSerializers } from '@platformatic/kafka';

function brokers() {
  if (process.env.KAFKA_BROKERS) return process.env.KAFKA_BROKERS.split(',');
  const env = readFileSync(new URL('../.services.env', import.meta.url), 'utf8');
  return /^KAFKA_BROKERS=(.*)$/m.exec(env)[1].split(',');
}

const BATCH = Number(process.env.BATCH ?? 500);
const TOTAL = Number(process.env.TOTAL ?? 100_000);
const SINGLE = Number(process.env.SINGLE ?? 2_000);
const value = JSON.stringify({ before: null, after: { id: 1, payload: randomBytes(150).toString('hex') }, op: 'c' });

function pct(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

async function run(name, send, close) {
  // warm-up (metadata, topic auto-creation)
  await send(Array.from({ length: 10 }, (_, i) => ({ key: String(i), value })));
  const t0 = performance.now();
  for (let i = 0; i < TOTAL; i += BATCH) {
    await send(Array.from({ length: BATCH }, (_, j) => ({ key: String(i + j), value })));
  }
  const batchedPerSec = TOTAL / ((performance.now() - t0) / 1000);
  const lat = [];
  for (let i = 0; i < SINGLE; i++) {
    const s = performance.now();
    await send([{ key: String(i), value }]);
    lat.push(performance.now() - s);
  }
  lat.sort((a, b) => a - b);
  await close();
  return {
    client: name,
    batchedPerSec: Math.round(batchedPerSec),
    batch: BATCH,
    singleP50Ms: +pct(lat, 0.5).toFixed(2),
    singleP99Ms: +pct(lat, 0.99).toFixed(2),
  };
}

const b = brokers();
const results = [];
{
  const topic = `bench_kafkajs_${Date.now()}`;
  const kafka = new Kafka({ clientId: 'bench', brokers: b, logLevel: logLevel.NOTHING });
  const p = kafka.producer({ allowAutoTopicCreation: true, maxInFlightRequests: 1 });
  await p.connect();
  results.push(
    await run(
      'kafkajs',
      (messages) => p.send({ topic, acks: -1, messages }),
      () => p.disconnect(),
    ),
  );
}
{
  const topic = `bench_platformatic_${Date.now()}`;
  const p = new Producer({ clientId: 'bench', bootstrapBrokers: b, serializers: stringSerializers, autocreateTopics: true, acks: -1 });
  results.push(
    await run(
      '@platformatic/kafka',
      (messages) => p.send({ messages: messages.map((m) => ({ topic, ...m })) }),
      () => p.close(),
    ),
  );
}
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
const out = { measuredAt: new Date().toISOString(), node: process.version, total: TOTAL, valueBytes: value.length, results };
writeFileSync(new URL('./results/reader-kafka-clients.json', import.meta.url), JSON.stringify(out, null, 2) + '\n');
process.stdout.write(JSON.stringify(out, null, 2) + '\n');
