// Types of the parts of the test-service orchestrator (services.mjs) that TypeScript tests use.
export interface PostgresService {
  pid: number;
  dir: string;
  endpoint: { PGHOST: string; PGPORT: string; PGUSER: string; PGDATABASE: string; PGPASSWORD?: string };
}
/** With `password`, the server authenticates every connection (scram-sha-256) instead of trusting it. */
export function startPostgres(workDir: string, options?: { extraConf?: string[]; password?: string }): Promise<PostgresService>;
export function stopPostgres(service: PostgresService): Promise<void>;
export function serviceUser(): { user: string; uid: number; gid: number } | null;
/** A TCP port nothing listens on right now (taken from the OS, then released). */
export function freePort(): Promise<number>;
