// Types of the parts of the test-service orchestrator (services.mjs) that TypeScript tests use.
export interface PostgresService {
  pid: number;
  dir: string;
  endpoint: { PGHOST: string; PGPORT: string; PGUSER: string; PGDATABASE: string };
}
export function startPostgres(workDir: string, options?: { extraConf?: string[] }): Promise<PostgresService>;
export function stopPostgres(service: PostgresService): Promise<void>;
export function serviceUser(): { user: string; uid: number; gid: number } | null;
