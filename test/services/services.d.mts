// Types of the parts of the test-service orchestrator (services.mjs) that TypeScript code uses.
export interface PostgresService {
  pid: number;
  dir: string;
  endpoint: { PGHOST: string; PGPORT: string; PGUSER: string; PGDATABASE: string; PGPASSWORD?: string };
}
/** With `password`, the server authenticates every connection (scram-sha-256) instead of trusting it. */
export function startPostgres(workDir: string, options?: { extraConf?: string[]; password?: string }): Promise<PostgresService>;
export function stopPostgres(service: PostgresService): Promise<void>;
export function serviceUser(): { user: string; uid: number; gid: number } | null;
/** Whether the user that runs the services (the unprivileged one when we are root) can reach `dir`. */
export function serviceUserCanReach(dir: string): boolean;
/** A TCP port nothing listens on right now (taken from the OS, then released). */
export function freePort(avoid?: ReadonlySet<number>): Promise<number>;
/** One distinct port per argument: the given one when it is free, else a fresh one that is none of the others. */
export function portsFor(...preferred: Array<number | undefined>): Promise<number[]>;
export type ServiceName = 'postgres' | 'kafka' | 'elasticsearch' | 'azurite';
/**
 * Starts what the environment does not give and what is not already running. `workDir`: persistent
 * mode (data kept there and reused by the next `up`); `stateDir`: where `.services.env` and the state file go.
 */
export function up(options?: { only?: ServiceName[]; stateDir?: string; workDir?: string }): Promise<{
  env: Record<string, string>;
  startedNow: ServiceName[];
  reused: ServiceName[];
  /** Process ids of the services this orchestrator runs (started now or reused; none for those given by the environment). */
  pids: Partial<Record<ServiceName, number>>;
  timings: Record<string, number>;
}>;
/** Stops the services `up` started; `keepData` keeps a persistent work directory for the next `up`. */
export function down(options?: { only?: ServiceName[]; stateDir?: string; keepData?: boolean }): Promise<void>;
export function isAlive(pid: number): boolean;
/** Signals the process group `pid` leads, else the process alone; a process already gone is no error. */
export function signalGroup(pid: number, signal: NodeJS.Signals): void;
