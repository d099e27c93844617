/**
 * docker-compose.yml cannot be brought up here (no Docker engine), so it is held to static rules
 * (test/deploy/composeCheck.ts) and its settings are fed to the code's own configuration loaders. Each
 * rule is also shown to fail on a broken copy of the file, so a passing run means something.
 */
import { describe, expect, test } from '@jest/globals';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { eventHubName, eventHubNamespace } from '../../src/functions/host/settings.js';
import { loadConfig } from '../../src/reader/config.js';
import { loadAdxConfig } from '../../src/shared/adx/config.js';
import { elasticsearchClientFromEnv } from '../../src/shared/elasticsearch/client.js';
import { setupOptionsFromEnv } from '../../src/shared/elasticsearch/setup.js';
import { generatorConfigFromEnv } from '../../src/shared/generator/config.js';
import { SINKS } from '../../src/shared/sinks/registry.js';
import { composeProblems, documentedSettings, environmentOf, readSources, type ComposeContext, type ComposeDoc } from './composeCheck.js';

const root = join(import.meta.dirname, '..', '..');
const read = (path: string): string => readFileSync(join(root, path), 'utf8');

// YAML 1.1 with merge keys, as compose reads it (PyYAML in docker-compose 1.x): `Y` and `on` are booleans there.
const parseCompose = (text: string): ComposeDoc => parse(text, { version: '1.1', merge: true }) as ComposeDoc;
const composeText = read('docker-compose.yml');
/** A fresh copy of the real document, to break. */
const compose = (): ComposeDoc => parseCompose(composeText);

const sources = new Map<string, string>();
const context: ComposeContext = {
  documented: documentedSettings(
    read('README.md'),
    readdirSync(join(root, 'docs'))
      .filter((f) => f.endsWith('.md'))
      .map((f) => read(join('docs', f))),
  ),
  dockerfile: read('Dockerfile'),
  sourceOf: (path) => {
    let text = sources.get(path);
    if (text === undefined) sources.set(path, (text = readSources(root, path)));
    return text;
  },
  eventHubsConfig: JSON.parse(read('deploy/local/eventhubs-emulator/Config.json')) as unknown,
  defaults: {
    topic: loadConfig({ KAFKA_BROKERS: 'localhost:9092' }).topic,
    consumerGroups: SINKS.map((s) => ({ setting: s.consumerGroupSetting, name: s.defaultConsumerGroup })),
  },
};

type Services = Record<string, Record<string, unknown>>;
const servicesOf = (doc: ComposeDoc): Services => doc.services as Services;
const envOf = (doc: ComposeDoc, service: string): Record<string, string> => {
  const env = servicesOf(doc)[service]?.environment;
  if (typeof env !== 'object' || env === null || Array.isArray(env)) throw new Error(`${service} has no environment mapping`);
  return env as Record<string, string>;
};
const plainEnv = (service: string): Record<string, string> =>
  Object.fromEntries([...environmentOf(servicesOf(compose())[service]!).entries()].map(([k, v]) => [k, String(v)]));

describe('docker-compose.yml', () => {
  test('breaks none of the rules', () => {
    expect(composeProblems(compose(), context)).toEqual([]);
  });

  test('brings up the whole stack, with the setup job before the Functions host', () => {
    const services = servicesOf(compose());
    expect(Object.keys(services).sort()).toEqual(
      ['azurite', 'elasticsearch', 'eventhubs', 'eventhubs-health', 'functions', 'kibana', 'kusto', 'kusto-health', 'postgres', 'reader', 'setup'].sort(),
    );
    expect(services.functions?.depends_on).toMatchObject({ setup: { condition: 'service_completed_successfully' } });
    expect(services.functions?.build).toEqual({ context: '.', target: 'functions' });
    expect(services.setup?.build).toEqual({ context: '.', target: 'setup' });
    // The reader is the Dockerfile's default (last) stage.
    expect(services.reader?.build).toEqual({ context: '.' });
  });

  test("the reader's settings pass its own validation and publish to the emulator's hub over SASL PLAIN", () => {
    const config = loadConfig(plainEnv('reader'));
    expect(config.kafka).toMatchObject({ brokers: ['eventhubs:9092'], securityProtocol: 'SASL_PLAINTEXT', saslMechanism: 'PLAIN', saslUsername: '$ConnectionString' });
    expect(config.kafka.saslPassword).toMatch(/^Endpoint=sb:\/\/eventhubs;.*UseDevelopmentEmulator=true;$/);
    expect(config.topic).toBe('cdc-events');
  });

  test("the Functions app's settings build every sink, turn the generator on and name the emulator's namespace", () => {
    const env = plainEnv('functions');
    for (const sink of SINKS) expect(() => sink.depsFromEnv(env)).not.toThrow();
    expect(loadAdxConfig(env)).toMatchObject({ mode: 'inline', clusterUrl: 'http://kusto:8080', database: 'NetDefaultDB' });
    const generator = generatorConfigFromEnv(env);
    expect(generator.enabled).toBe(true);
    expect(generator.pg).toMatchObject({ host: 'postgres', port: 5432, database: 'postgres' });
    expect(eventHubNamespace(env)).toBe('eventhubs');
    // The triggers read the hub the reader publishes to.
    expect(eventHubName(env)).toBe(context.defaults.topic);
  });

  test("the setup job's settings pass the setup scripts' validation", () => {
    const env = plainEnv('setup');
    expect(loadAdxConfig(env)).toMatchObject({ mode: 'inline', clusterUrl: 'http://kusto:8080' });
    expect(setupOptionsFromEnv(env)).toMatchObject({ replicas: 0 });
    expect(() => elasticsearchClientFromEnv(env)).not.toThrow();
  });
});

describe('the checker catches', () => {
  test('an undocumented variable', () => {
    const doc = compose();
    envOf(doc, 'reader').CDC_SLOTT = 'typo';
    expect(composeProblems(doc, context)).toEqual([
      'reader: CDC_SLOTT is not documented (README "Configuration" tables or docs/*.md)',
      'reader: CDC_SLOTT is not read by the code its image contains (src/reader, src/shared/core, src/shared/events)',
    ]);
  });

  test('a documented variable the receiving code does not read', () => {
    const doc = compose();
    envOf(doc, 'reader').WORKER_SINKS = 'elasticsearchSink'; // the worker's setting: src/worker, not in the reader's image
    expect(composeProblems(doc, context)).toEqual(['reader: WORKER_SINKS is not read by the code its image contains (src/reader, src/shared/core, src/shared/events)']);
  });

  test("a third-party image's variable on our service, and an unknown one on a third-party image", () => {
    const doc = compose();
    envOf(doc, 'functions').POSTGRES_PASSWORD = 'x';
    envOf(doc, 'kusto').KUSTO_TURBO = 'true';
    expect(composeProblems(doc, context)).toEqual([
      'kusto: KUSTO_TURBO is not a known setting of its image; list it in THIRD_PARTY_SETTINGS with a reason',
      'functions: POSTGRES_PASSWORD is not documented (README "Configuration" tables or docs/*.md)',
      'functions: POSTGRES_PASSWORD is not read by the code its image contains (src/functions, src/shared)',
    ]);
  });

  test('a value YAML 1.1 reads as a boolean, and one compose would interpolate', () => {
    const doc = parseCompose(composeText.replace("ACCEPT_EULA: 'Y'\n    ports:", 'ACCEPT_EULA: Y\n    ports:'));
    envOf(doc, 'reader').KAFKA_SASL_USERNAME = '$ConnectionString';
    expect(composeProblems(doc, context)).toEqual([
      'services.reader.environment.KAFKA_SASL_USERNAME: "$" interpolates from the shell; write "$$" for a literal $ ($ConnectionString)',
      'kusto: ACCEPT_EULA is not a string (true); quote it',
    ]);
  });

  test('an unpinned image, in compose and in the Dockerfile', () => {
    const doc = compose();
    servicesOf(doc).kusto!.image = 'mcr.microsoft.com/azuredataexplorer/kustainer-linux:latest';
    servicesOf(doc).kibana!.image = 'docker.elastic.co/kibana/kibana';
    expect(composeProblems(doc, { ...context, dockerfile: context.dockerfile.replace('FROM node:22-slim AS build\n', 'FROM node AS build\n') })).toEqual([
      'Dockerfile: FROM node is not pinned to a tag (no latest)',
      'kibana: image docker.elastic.co/kibana/kibana is not pinned to a tag (no latest)',
      'kusto: image mcr.microsoft.com/azuredataexplorer/kustainer-linux:latest is not pinned to a tag (no latest)',
    ]);
  });

  test('a host port published twice', () => {
    const doc = compose();
    servicesOf(doc).reader!.ports = ['8080:8080'];
    servicesOf(doc).functions!.ports = ['127.0.0.1:9200:80', { target: 80, published: 5601 }];
    expect(composeProblems(doc, context)).toEqual([
      'reader: host port 8080/tcp is already published by kusto',
      'functions: host port 9200/tcp is already published by elasticsearch',
      'functions: host port 5601/tcp is already published by kibana',
    ]);
  });

  test('a service without a healthcheck, and a sidecar probe that probes nothing', () => {
    const doc = compose();
    delete servicesOf(doc).reader!.healthcheck;
    servicesOf(doc)['kusto-health']!.healthcheck = { test: ['CMD', 'curl', '-fsS', 'http://localhost:8080/'] };
    expect(composeProblems(doc, context)).toEqual([
      'kusto: its probe kusto-health is missing or its healthcheck does not call kusto',
      'reader: no healthcheck (or make it a one-shot job others wait for with service_completed_successfully)',
    ]);
  });

  test('an order that does not wait for what a service connects to', () => {
    const doc = compose();
    const functions = servicesOf(doc).functions!;
    const depends = functions.depends_on as Record<string, unknown>;
    delete depends.elasticsearch;
    depends.eventhubs = { condition: 'service_started' };
    depends.setup = { condition: 'service_healthy' };
    servicesOf(doc).kibana!.depends_on = ['elasticsearch'];
    expect(composeProblems(doc, context)).toEqual([
      'kibana: depends_on without conditions; use the long form with a condition per service',
      'functions: waits for setup to be healthy, but setup has no healthcheck',
      'functions: waits only for eventhubs to start; wait for it to be healthy (or to complete)',
      'functions: depends on eventhubs directly; wait for its probe eventhubs-health to be healthy instead',
      'functions: connects to elasticsearch but does not wait for elasticsearch (depends_on)',
      // setup is no longer waited for with service_completed_successfully, so it is no one-shot any more
      'setup: no healthcheck (or make it a one-shot job others wait for with service_completed_successfully)',
    ].sort((a, b) => order(a) - order(b)));
  });

  test('a consumer group or hub the emulator does not declare', () => {
    const doc = compose();
    envOf(doc, 'functions').ES_CONSUMER_GROUP = 'es-sink-2';
    envOf(doc, 'reader').CDC_TOPIC = 'orders';
    expect(composeProblems(doc, context)).toEqual([
      'reader: uses hub orders, which deploy/local/eventhubs-emulator/Config.json does not declare',
      'functions: consumer group es-sink-2 (ES_CONSUMER_GROUP) is not declared for hub cdc-events in Config.json',
    ]);
  });
});

/** Problems come out service by service in the file's order: sort expectations the same way. */
function order(problem: string): number {
  const names = Object.keys(servicesOf(compose()));
  return names.indexOf(problem.slice(0, problem.indexOf(':')));
}
