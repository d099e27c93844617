/**
 * One child process of `npm start` (the reader, the worker): the TypeScript entry point run as
 * `npm run reader` runs it, its output appended to a log file, its last lines kept for the console,
 * and a restart policy.
 *
 * Policy: a child that exits while nobody asked it to stop is restarted after a backoff (1 s, 2 s,
 * 4 s … 30 s), because both are built to be restarted (the reader resumes from its slot, the worker
 * from its committed offsets). Restarting cannot fix a bad setting, so exit code 2 (invalid
 * configuration) is fatal at once, and so are five exits in a row that each came within a minute of
 * their start: `onFatal` is called and the launcher stops everything.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { redact } from '../shared/core/redact.js';

export interface ChildSpec {
  name: string;
  /** Entry point relative to the repository root, e.g. `src/reader/main.ts`. */
  entry: string;
  /** Node flags before the TypeScript ones (e.g. the reader's heap bounds). */
  nodeFlags?: string[];
  env: Record<string, string | undefined>;
  cwd: string;
  logFile: string;
  /** Values masked in what reaches the console. */
  secrets: string[];
}

export interface SupervisorEvents {
  /** A line for the console (the launcher's own output). */
  say(line: string): void;
  /** A new process was started (the launcher records every pid it started). */
  started(name: string, pid: number): void;
  /** The child cannot be kept running; the launcher should stop everything. */
  fatal(name: string, reason: string): void;
}

const TAIL_LINES = 15;
const MAX_QUICK_FAILURES = 5;
const QUICK_MS = 60_000;
const MAX_BACKOFF_MS = 30_000;

/** How `npm run reader` / `npm run worker` run the sources: no build step. */
export const TYPESCRIPT_FLAGS = ['--experimental-transform-types', '--no-warnings', '--import', './src/reader/devLoader.mjs'];

export class Supervised {
  private proc: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private stopping = false;
  private quickFailures = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private readonly lines: string[] = [];
  readonly pids: number[] = [];
  restarts = 0;

  constructor(
    private readonly spec: ChildSpec,
    private readonly events: SupervisorEvents,
  ) {}

  get pid(): number | undefined {
    return this.proc?.exitCode === null && this.proc.signalCode === null ? this.proc.pid : undefined;
  }

  /** The last lines the child wrote (stdout and stderr), for the console when it fails. */
  tail(): string[] {
    return [...this.lines];
  }

  start(): void {
    const { spec } = this;
    const log = fs.createWriteStream(spec.logFile, { flags: 'a' });
    const startedAt = Date.now();
    // Its own process group: Ctrl-C in the terminal reaches the launcher only, which stops the
    // children in order (generator, then reader and worker) instead of all at once.
    const proc = spawn(process.execPath, [...(spec.nodeFlags ?? []), ...TYPESCRIPT_FLAGS, spec.entry], {
      cwd: spec.cwd,
      env: spec.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    this.proc = proc;
    if (proc.pid !== undefined) {
      this.pids.push(proc.pid);
      this.events.started(spec.name, proc.pid);
    }
    const keep = (stream: 'out' | 'err') => {
      let buf = '';
      return (chunk: Buffer) => {
        log.write(chunk);
        buf += chunk.toString();
        let i: number;
        while ((i = buf.indexOf('\n')) >= 0) {
          this.line(buf.slice(0, i), stream);
          buf = buf.slice(i + 1);
        }
      };
    };
    proc.stdout.on('data', keep('out'));
    proc.stderr.on('data', keep('err'));
    this.exited = new Promise<void>((resolve) => {
      proc.on('error', (err) => {
        this.events.say(`${spec.name}: could not start: ${err.message}`);
        resolve();
      });
      proc.on('exit', (code, signal) => {
        log.end();
        resolve();
        if (this.stopping) return;
        this.unexpectedExit(code, signal, Date.now() - startedAt);
      });
    });
  }

  private line(text: string, stream: 'out' | 'err'): void {
    if (text.trim() === '') return;
    this.lines.push(text);
    if (this.lines.length > TAIL_LINES) this.lines.shift();
    // The children log JSON lines; their warnings and errors reach the console, the rest the log file.
    let entry: { level?: unknown; msg?: unknown } | undefined;
    try {
      entry = JSON.parse(text) as { level?: unknown; msg?: unknown };
    } catch {
      entry = undefined;
    }
    if (entry === undefined && stream === 'err') this.events.say(`${this.spec.name}: ${redact(text, this.spec.secrets)}`);
    else if (entry !== undefined && (entry.level === 'warn' || entry.level === 'error'))
      this.events.say(`${this.spec.name} ${String(entry.level)}: ${redact(String(entry.msg), this.spec.secrets)} (${this.spec.logFile})`);
  }

  private unexpectedExit(code: number | null, signal: NodeJS.Signals | null, ranMs: number): void {
    const { name } = this.spec;
    const how = signal === null ? `exit code ${code}` : `signal ${signal}`;
    const tail = this.tail()
      .map((l) => `    | ${redact(l, this.spec.secrets)}`)
      .join('\n');
    this.events.say(`${name} stopped unexpectedly (${how}); its last lines (all in ${this.spec.logFile}):\n${tail}`);
    if (code === 2) {
      this.events.fatal(name, `${name} refused its configuration (exit code 2): restarting cannot help; fix the setting named above`);
      return;
    }
    this.quickFailures = ranMs < QUICK_MS ? this.quickFailures + 1 : 1;
    if (this.quickFailures >= MAX_QUICK_FAILURES) {
      this.events.fatal(name, `${name} failed ${this.quickFailures} times in a row, each within a minute of starting`);
      return;
    }
    const backoff = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** (this.quickFailures - 1));
    this.events.say(`${name}: restarting in ${backoff / 1000} s`);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stopping) return;
      this.restarts++;
      this.start();
    }, backoff);
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. No restart after this. */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    const pid = this.pid;
    if (pid === undefined) return;
    signalGroup(pid, 'SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.events.say(`${this.spec.name}: still running ${graceMs / 1000} s after SIGTERM, killing it`);
        signalGroup(pid, 'SIGKILL');
        resolve();
      }, graceMs);
    });
    await Promise.race([this.exited, killed]);
    clearTimeout(timer);
    await this.exited;
  }
}

/** Signals the child's process group (it leads one, being detached), else the child alone. */
function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      /* already gone */
    }
  }
}
