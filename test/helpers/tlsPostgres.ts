/**
 * A PostgreSQL of the test's own with `ssl = on` and a CA made here (openssl): a CA, an unrelated
 * "wrong" CA, and a server certificate for IP 127.0.0.1 only, signed by the first. The server also
 * listens on 127.0.0.2, which its certificate does not name. With `password`, the server checks
 * the postgres role's password (scram-sha-256) instead of trusting every connection.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serviceUser, startPostgres, stopPostgres, type PostgresService } from '../services/services.mjs';

export interface TlsPostgres {
  server: PostgresService;
  port: number;
  /** PEM files: the CA that signed the server's certificate, and one that did not. */
  ca: string;
  wrongCa: string;
  stop(): Promise<void>;
}

export async function startTlsPostgres(options: { password?: string } = {}): Promise<TlsPostgres> {
  const dir = mkdtempSync(join(tmpdir(), 'pg-cdc-tls-'));
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=pg-cdc test CA', '-keyout', 'ca.key', '-out', 'ca.crt');
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=someone else', '-keyout', 'wrong-ca.key', '-out', 'wrong-ca.crt');
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', 'server.key', '-out', 'server.csr');
  writeFileSync(join(dir, 'san.ext'), 'subjectAltName = IP:127.0.0.1\n');
  openssl(
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    'san.ext',
    '-out',
    'server.crt',
  );
  // PostgreSQL refuses a key file others can read, and runs as the service user when we are root.
  chmodSync(join(dir, 'server.key'), 0o600);
  const owner = serviceUser();
  if (owner) {
    chownSync(dir, owner.uid, owner.gid);
    for (const f of ['server.key', 'server.crt']) chownSync(join(dir, f), owner.uid, owner.gid);
  }
  const server = await startPostgres(join(dir, 'server'), {
    ...(options.password === undefined ? {} : { password: options.password }),
    extraConf: [
      `ssl = on`,
      `ssl_cert_file = '${join(dir, 'server.crt')}'`,
      `ssl_key_file = '${join(dir, 'server.key')}'`,
      `listen_addresses = '127.0.0.1,127.0.0.2'`,
    ],
  });
  return {
    server,
    port: Number(server.endpoint.PGPORT),
    ca: join(dir, 'ca.crt'),
    wrongCa: join(dir, 'wrong-ca.crt'),
    stop: async () => {
      await stopPostgres(server);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
