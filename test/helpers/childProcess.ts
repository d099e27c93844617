/** Runs an entry point of the project (TypeScript, through the dev loader) or an npm script as a child process, collecting its output lines. */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));

export interface ChildRun {
  proc: ChildProcess;
  /** Each stdout line parsed as JSON (`{ msg }` when it is not), then `{ stderr }` once it exits. */
  lines: Record<string, unknown>[];
  exited: Promise<number | null>;
}

/**
 * `entry` relative to the repository root, e.g. `src/reader/main.ts`, with `args`; the child sees only PATH and `env`.
 * A built entry point (`dist/...js`) runs as in production, without the TypeScript loader.
 */
export function spawnEntryPoint(entry: string, env: Record<string, string>, args: readonly string[] = []): ChildRun {
  const loader = entry.endsWith('.js') ? [] : ['--experimental-transform-types', '--no-warnings', '--import', './src/reader/devLoader.mjs'];
  return collect(
    spawn(process.execPath, [...loader, entry, ...args], {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
}

/**
 * `npm <args>` in the repository root, as a user types it, in a process group of its own:
 * `interrupt()` signals the whole group as a terminal's Ctrl-C does. The child sees only PATH, HOME and `env`.
 */
export function spawnNpm(args: string[], env: Record<string, string>): ChildRun & { interrupt(): void } {
  const proc = spawn('npm', args, {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  return { ...collect(proc), interrupt: () => process.kill(-proc.pid!, 'SIGINT') };
}

function collect(proc: ChildProcess): ChildRun {
  const lines: Record<string, unknown>[] = [];
  let buf = '';
  proc.stdout?.on('data', (d: Buffer) => {
    buf += d.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        lines.push({ msg: line });
      }
    }
  });
  let err = '';
  proc.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) =>
    proc.on('exit', (code) => {
      if (err) lines.push({ stderr: err });
      resolve(code);
    }),
  );
  return { proc, lines, exited };
}
