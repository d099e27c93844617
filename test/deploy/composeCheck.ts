/**
 * The static rules docker-compose.yml is held to, since no Docker engine runs here to bring it up:
 * - every variable compose sets on a service we build is a documented setting (README's configuration
 *   tables, docs/*.md tables) and is read by the code that service's image contains (the build stages
 *   of the Dockerfile it copies from); variables of third-party images, and the Functions host's own,
 *   are listed in THIRD_PARTY_SETTINGS with a reason;
 * - no value is interpolated from the user's shell (`$X` would silently become empty), and every
 *   environment value is a string (YAML 1.1 reads `Y`, `on`, `no` as booleans);
 * - every image is pinned to a tag other than `latest` (or a digest), and so is every `FROM` of the Dockerfile;
 * - every service has a healthcheck, or is a one-shot job others wait for with
 *   `service_completed_successfully`, or is probed by a sidecar (PROBED_BY);
 * - every `depends_on` names a condition that fits the dependency, and a service that names another
 *   service's host in its settings waits for it;
 * - no two services publish the same host port;
 * - the Event Hubs emulator declares the hub and the consumer groups the stack uses.
 *
 * `composeProblems` returns every broken rule as a sentence naming the service and the fix; the test
 * asserts none for the real file and the right one for each broken copy.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

export type ComposeDoc = Record<string, unknown>;

/** Settings of images we do not build, or that the Functions host itself reads, per service. */
export const THIRD_PARTY_SETTINGS: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  postgres: {
    POSTGRES_PASSWORD: 'the official postgres image: superuser password set at first start',
    POSTGRES_DB: 'the official postgres image: database created at first start',
  },
  eventhubs: {
    BLOB_SERVER: 'Event Hubs emulator: host of its Azurite (blob)',
    METADATA_SERVER: 'Event Hubs emulator: host of its Azurite (metadata)',
    ACCEPT_EULA: 'Event Hubs emulator: accepts its licence terms',
  },
  elasticsearch: {
    'discovery.type': 'Elasticsearch image: setting passed to the node (single node)',
    'xpack.security.enabled': 'Elasticsearch image: setting passed to the node (no TLS or users locally)',
    ES_JAVA_OPTS: 'Elasticsearch image: JVM heap',
  },
  kibana: { ELASTICSEARCH_HOSTS: 'Kibana image: the Elasticsearch it connects to' },
  kusto: { ACCEPT_EULA: 'Kusto emulator: accepts its licence terms' },
  functions: {
    AzureWebJobsStorage:
      "the Functions host's own storage (leases, Event Hubs checkpoints, timer locks); src/shared falls back to it for dead letters when no dead-letter account is set",
  },
};

/** Services without a healthcheck of their own because their image has no probe tool, and the sidecar whose healthcheck probes them. */
export const PROBED_BY: Readonly<Record<string, { by: string; reason: string }>> = {
  eventhubs: { by: 'eventhubs-health', reason: 'the emulator image is not known to ship a shell or an HTTP client; its health endpoint is :5300/health' },
  kusto: { by: 'kusto-health', reason: 'the Kusto emulator image is not known to ship an HTTP client; probed with a management command' },
};

const CONDITIONS = ['service_started', 'service_healthy', 'service_completed_successfully'] as const;
type Condition = (typeof CONDITIONS)[number];

interface Service {
  image?: unknown;
  build?: unknown;
  environment?: unknown;
  ports?: unknown;
  healthcheck?: unknown;
  depends_on?: unknown;
  [key: string]: unknown;
}

export interface ComposeContext {
  /** Setting names the documentation lists (`documentedSettings`). */
  documented: ReadonlySet<string>;
  /** The Dockerfile's text (`build` services are built from it). */
  dockerfile: string;
  /** The source text of a repository path (a directory: every source file under it). */
  sourceOf(path: string): string;
  /** The emulator's Config.json, parsed. */
  eventHubsConfig: unknown;
  /** Defaults the code uses when compose sets nothing: the hub, and per sink its consumer-group setting and default. */
  defaults: { topic: string; consumerGroups: readonly { setting: string; name: string }[] };
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A service's environment as name → value, from the mapping or the `NAME=value` list form. */
export function environmentOf(service: Service): Map<string, unknown> {
  const env = new Map<string, unknown>();
  const raw = service.environment;
  if (Array.isArray(raw)) {
    for (const item of raw) {
      const text = String(item);
      const eq = text.indexOf('=');
      env.set(eq < 0 ? text : text.slice(0, eq), eq < 0 ? undefined : text.slice(eq + 1));
    }
  } else if (isRecord(raw)) {
    for (const [name, value] of Object.entries(raw)) env.set(name, value);
  }
  return env;
}

/** The setting names in the first column of the configuration tables: README's "Configuration" section and every table of docs/*.md. */
export function documentedSettings(readme: string, docs: readonly string[]): Set<string> {
  const names = new Set<string>();
  const section = /^## Configuration\n([\s\S]*?)(?=^## )/m.exec(readme)?.[1] ?? '';
  for (const text of [section, ...docs]) {
    for (const line of text.split('\n')) {
      if (!line.startsWith('|')) continue;
      const firstCell = line.split('|')[1] ?? '';
      for (const m of firstCell.matchAll(/`([^`]+)`/g)) names.add(m[1]!);
    }
  }
  return names;
}

interface DockerStage {
  name: string | undefined;
  from: string;
  /** Build-context sources of its COPY lines. */
  sources: string[];
  /** Stages it copies from (`COPY --from=`). */
  copiesFrom: string[];
}

export function dockerStages(dockerfile: string): DockerStage[] {
  const lines = dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const stages: DockerStage[] = [];
  for (const line of lines) {
    const words = line.split(/\s+/);
    const keyword = words[0]!.toUpperCase();
    if (keyword === 'FROM') {
      const args = words.slice(1).filter((w) => !w.startsWith('--'));
      stages.push({ from: args[0] ?? '', name: args[1]?.toUpperCase() === 'AS' ? args[2] : undefined, sources: [], copiesFrom: [] });
    } else if (keyword === 'COPY' && stages.length > 0) {
      const stage = stages[stages.length - 1]!;
      const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length);
      const paths = words.slice(1).filter((w) => !w.startsWith('--'));
      if (from !== undefined) stage.copiesFrom.push(from);
      else stage.sources.push(...paths.slice(0, -1));
    }
  }
  return stages;
}

/** The code (src/, scripts/ paths) a built service's image contains: its target stage's sources and those of the stages it copies from. */
export function codeOfTarget(dockerfile: string, target: string | undefined): string[] {
  const stages = dockerStages(dockerfile);
  const stage = target === undefined ? stages[stages.length - 1] : stages.find((s) => s.name === target);
  if (stage === undefined) return [];
  const feeding = [stage, ...stage.copiesFrom.map((name) => stages.find((s) => s.name === name)).filter((s): s is DockerStage => s !== undefined)];
  const code = feeding.flatMap((s) => s.sources).filter((p) => /^(\.\/)?(src|scripts)(\/|$)/.test(p));
  return [...new Set(code.map((p) => p.replace(/^\.\//, '').replace(/\/$/, '')))];
}

/**
 * Whether `source` reads the setting `name`: a string literal of it, `env.NAME`, or, for an
 * identity-based connection's `<prefix>__<property>`, a template `${...}__<property>` where the prefix is
 * a literal too. Textual, as the
 * README's own rule is.
 */
export function reads(source: string, name: string): boolean {
  const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  if (new RegExp(`(['"\`])${escaped}\\1|\\benv\\.${escaped}\\b`).test(source)) return true;
  const parts = /^([A-Za-z]+)(__[A-Za-z]+)$/.exec(name);
  return parts !== null && source.includes(`}${parts[2]}\``) && new RegExp(`(['"\`])${parts[1]}\\1`).test(source);
}

function imagePinned(image: string): boolean {
  if (/@sha256:[0-9a-f]{64}$/.test(image)) return true;
  const lastPart = image.slice(image.lastIndexOf('/') + 1);
  const colon = lastPart.indexOf(':');
  return colon > 0 && lastPart.slice(colon + 1) !== '' && lastPart.slice(colon + 1) !== 'latest';
}

/** Host ports a `ports` entry publishes: `H:C`, `IP:H:C`, `H1-H2:C1-C2`, `/udp`, or the long form. A bare `C` publishes a random port. */
function hostPorts(entry: unknown): string[] {
  if (isRecord(entry)) {
    const port = entry.published;
    if (typeof port !== 'string' && typeof port !== 'number') return [];
    return [`${port}/${typeof entry.protocol === 'string' ? entry.protocol : 'tcp'}`];
  }
  const text = String(entry);
  const [spec, protocol = 'tcp'] = text.split('/');
  const parts = spec!.split(':');
  if (parts.length < 2) return [];
  const host = parts[parts.length - 2]!;
  const range = /^(\d+)-(\d+)$/.exec(host);
  if (!range) return [`${host}/${protocol}`];
  const ports: string[] = [];
  for (let p = Number(range[1]); p <= Number(range[2]); p++) ports.push(`${p}/${protocol}`);
  return ports;
}

function dependsOn(service: Service): { entries: Map<string, Condition | undefined>; listForm: boolean } {
  const raw = service.depends_on;
  const entries = new Map<string, Condition | undefined>();
  if (Array.isArray(raw)) {
    for (const name of raw) entries.set(String(name), undefined);
    return { entries, listForm: true };
  }
  if (isRecord(raw)) {
    for (const [name, spec] of Object.entries(raw)) {
      const condition = isRecord(spec) ? spec.condition : undefined;
      entries.set(name, CONDITIONS.find((c) => c === condition));
    }
  }
  return { entries, listForm: false };
}

function hasHealthcheck(service: Service): boolean {
  const hc = service.healthcheck;
  if (!isRecord(hc) || hc.disable === true) return false;
  const test = hc.test;
  if (Array.isArray(test)) return test.length > 1 && test[0] !== 'NONE';
  return typeof test === 'string' && test.trim() !== '';
}

/** Every string in the document (values, list items), for the interpolation rule. */
function strings(value: unknown, path: string, out: [string, string][]): [string, string][] {
  if (typeof value === 'string') out.push([path, value]);
  else if (Array.isArray(value)) value.forEach((v, i) => strings(v, `${path}[${i}]`, out));
  else if (isRecord(value)) for (const [k, v] of Object.entries(value)) strings(v, path === '' ? k : `${path}.${k}`, out);
  return out;
}

/** Whether `value` names `host` as a host: `host`, `host:port`, `//host`, `@host`, `sb://host;`. */
function namesHost(value: string, host: string): boolean {
  return new RegExp(`(^|[/@,;="\\s])${host.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(:\\d|[/;,"\\s]|$)`).test(value);
}

export function composeProblems(doc: ComposeDoc, ctx: ComposeContext): string[] {
  const problems: string[] = [];
  const services = isRecord(doc.services) ? (doc.services as Record<string, Service>) : {};
  const names = Object.keys(services);
  if (names.length === 0) return ['no services'];

  // Interpolation: compose replaces $X / ${X} from the shell running it; `$$` is a literal `$`.
  for (const [path, value] of strings(doc, '', [])) {
    if (value.replace(/\$\$/g, '').includes('$')) problems.push(`${path}: "$" interpolates from the shell; write "$$" for a literal $ (${value})`);
  }

  // Dockerfile base images.
  for (const stage of dockerStages(ctx.dockerfile)) {
    const isStage = dockerStages(ctx.dockerfile).some((s) => s.name === stage.from);
    if (!isStage && !imagePinned(stage.from)) problems.push(`Dockerfile: FROM ${stage.from} is not pinned to a tag (no latest)`);
  }

  const oneShot = new Set<string>();
  for (const service of Object.values(services)) {
    for (const [dep, condition] of dependsOn(service).entries) if (condition === 'service_completed_successfully') oneShot.add(dep);
  }

  const published = new Map<string, string>();
  for (const [name, service] of Object.entries(services)) {
    // Images.
    if (typeof service.image === 'string') {
      if (!imagePinned(service.image)) problems.push(`${name}: image ${service.image} is not pinned to a tag (no latest)`);
    } else if (service.build === undefined) {
      problems.push(`${name}: neither image nor build`);
    }

    // Settings.
    const env = environmentOf(service);
    const thirdParty = THIRD_PARTY_SETTINGS[name] ?? {};
    const target = isRecord(service.build) && typeof service.build.target === 'string' ? service.build.target : undefined;
    const code = service.build === undefined ? [] : codeOfTarget(ctx.dockerfile, target);
    if (service.build !== undefined && code.length === 0) problems.push(`${name}: no code found for its build target ${target ?? '(the last stage)'} in the Dockerfile`);
    for (const [variable, value] of env) {
      if (typeof value !== 'string') problems.push(`${name}: ${variable} is not a string (${JSON.stringify(value)}); quote it`);
      if (variable in thirdParty) continue;
      if (service.build === undefined) {
        problems.push(`${name}: ${variable} is not a known setting of its image; list it in THIRD_PARTY_SETTINGS with a reason`);
        continue;
      }
      if (!ctx.documented.has(variable)) problems.push(`${name}: ${variable} is not documented (README "Configuration" tables or docs/*.md)`);
      if (!code.some((path) => reads(ctx.sourceOf(path), variable))) problems.push(`${name}: ${variable} is not read by the code its image contains (${code.join(', ')})`);
    }

    // Health.
    const probe = PROBED_BY[name];
    if (!hasHealthcheck(service) && !oneShot.has(name) && probe === undefined) {
      problems.push(`${name}: no healthcheck (or make it a one-shot job others wait for with service_completed_successfully)`);
    }
    if (probe !== undefined) {
      const prober = services[probe.by];
      if (prober === undefined || !hasHealthcheck(prober) || !JSON.stringify(prober.healthcheck).includes(`//${name}:`)) {
        problems.push(`${name}: its probe ${probe.by} is missing or its healthcheck does not call ${name}`);
      }
    }

    // Order.
    const { entries, listForm } = dependsOn(service);
    if (listForm) problems.push(`${name}: depends_on without conditions; use the long form with a condition per service`);
    for (const [dep, condition] of entries) {
      const dependency = services[dep];
      if (dependency === undefined) {
        problems.push(`${name}: depends on ${dep}, which is not a service`);
        continue;
      }
      if (condition === undefined) {
        if (!listForm) problems.push(`${name}: depends on ${dep} without a condition`);
      } else if (condition === 'service_healthy' && !hasHealthcheck(dependency)) {
        problems.push(`${name}: waits for ${dep} to be healthy, but ${dep} has no healthcheck`);
      } else if (condition === 'service_completed_successfully' && hasHealthcheck(dependency)) {
        problems.push(`${name}: waits for ${dep} to complete, but ${dep} has a healthcheck (a long-running service)`);
      } else if (condition === 'service_started' && PROBED_BY[dep]?.by !== name) {
        problems.push(`${name}: waits only for ${dep} to start; wait for it to be healthy (or to complete)`);
      }
      if (PROBED_BY[dep] !== undefined && PROBED_BY[dep].by !== name) {
        problems.push(`${name}: depends on ${dep} directly; wait for its probe ${PROBED_BY[dep].by} to be healthy instead`);
      }
    }
    const settingValues = [...env.values()].filter((v): v is string => typeof v === 'string');
    const probeText = JSON.stringify(service.healthcheck ?? '');
    for (const other of names) {
      if (other === name || !(settingValues.some((v) => namesHost(v, other)) || namesHost(probeText, other))) continue;
      const waitsFor = PROBED_BY[other] !== undefined && PROBED_BY[other].by !== name ? PROBED_BY[other].by : other;
      if (!entries.has(waitsFor)) problems.push(`${name}: connects to ${other} but does not wait for ${waitsFor} (depends_on)`);
    }

    // Host ports.
    for (const entry of Array.isArray(service.ports) ? service.ports : []) {
      for (const port of hostPorts(entry)) {
        const previous = published.get(port);
        if (previous !== undefined) problems.push(`${name}: host port ${port} is already published by ${previous}`);
        else published.set(port, name);
      }
    }
  }

  // The emulator's hub and consumer groups: what the reader publishes to and the Functions consume from.
  const config = ctx.eventHubsConfig;
  const entities = isRecord(config) && isRecord(config.UserConfig) && Array.isArray(config.UserConfig.NamespaceConfig) ? config.UserConfig.NamespaceConfig : [];
  const hubs = new Map<string, Set<string>>();
  for (const ns of entities) {
    for (const entity of isRecord(ns) && Array.isArray(ns.Entities) ? ns.Entities : []) {
      if (!isRecord(entity) || typeof entity.Name !== 'string') continue;
      const groups = Array.isArray(entity.ConsumerGroups) ? entity.ConsumerGroups : [];
      hubs.set(entity.Name, new Set(groups.flatMap((g) => (isRecord(g) && typeof g.Name === 'string' ? [g.Name] : []))));
    }
  }
  for (const [name, service] of Object.entries(services)) {
    const env = environmentOf(service);
    const usesHub = env.has('KAFKA_BROKERS') || env.has('EventHubConnection') || env.has('EVENTHUBS_CONNECTION_STRING');
    if (!usesHub) continue;
    const topic = typeof env.get('CDC_TOPIC') === 'string' ? (env.get('CDC_TOPIC') as string) : ctx.defaults.topic;
    const groups = hubs.get(topic);
    if (groups === undefined) {
      problems.push(`${name}: uses hub ${topic}, which deploy/local/eventhubs-emulator/Config.json does not declare`);
      continue;
    }
    if (!env.has('EventHubConnection')) continue;
    for (const { setting, name: defaultGroup } of ctx.defaults.consumerGroups) {
      const group = typeof env.get(setting) === 'string' ? (env.get(setting) as string) : defaultGroup;
      if (!groups.has(group)) problems.push(`${name}: consumer group ${group} (${setting}) is not declared for hub ${topic} in Config.json`);
    }
  }
  return problems;
}

/** Every source file's text under a repository path, concatenated (memoized by the caller). */
export function readSources(root: string, path: string): string {
  const full = join(root, path);
  if (statSync(full).isFile()) return readFileSync(full, 'utf8');
  return readdirSync(full, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && /\.(ts|mts|mjs|js)$/.test(entry.name))
    .map((entry) => readFileSync(join(entry.parentPath, entry.name), 'utf8'))
    .join('\n');
}
