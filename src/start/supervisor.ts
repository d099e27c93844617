/**
 * One child process of `npm start` (the reader, the worker): the TypeScript entry point run as
 * `npm run reader` runs it, its output appended to a log file (its warnings and errors also on the
 * console), its last lines kept for when it fails, and a restart policy.
 *
 * Policy: a child that exits while nobody asked it to stop is restarted after a backoff (1 s, 2 s,
 * 4 s … 30 s), because both are built to be restarted (the reader resumes from its slot, the worker
 * from its committed offsets). Restarting cannot fix a bad setting, so exit code 2 (invalid
 * configuration) is fatal at once, and so are five exits in a row that each came within a minute of
 * their start: `onFatal` is called and the launcher stops everything.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { signalGroup } from '../../test/services/services.mjs';
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
const FOLLOW_MS = 250;
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
    const startedAt = Date.now();
    // The child writes its log file itself (stdout and stderr), and the launcher follows the file:
    // through a pipe, a child would die of EPIPE at its next line if the launcher were killed
    // hard, or not, depending on when it next logs; this way it keeps running, recorded in
    // start.json, until the next `npm start` stops it.
    const offset = fs.existsSync(spec.logFile) ? fs.statSync(spec.logFile).size : 0;
    const out = fs.openSync(spec.logFile, 'a');
    // Its own process group: Ctrl-C in the terminal reaches the launcher only, which stops the
    // children in order (generator, then reader and worker) instead of all at once.
    const proc = spawn(process.execPath, [...(spec.nodeFlags ?? []), ...TYPESCRIPT_FLAGS, spec.entry], {
      cwd: spec.cwd,
      env: spec.env,
      stdio: ['ignore', out, out],
      detached: true,
    });
    fs.closeSync(out);
    this.proc = proc;
    if (proc.pid !== undefined) {
      this.pids.push(proc.pid);
      this.events.started(spec.name, proc.pid);
    }
    const follow = this.follow(offset);
    const timer = setInterval(follow, FOLLOW_MS);
    this.exited = new Promise<void>((resolve) => {
      proc.on('error', (err) => {
        clearInterval(timer);
        this.events.say(`${spec.name}: could not start: ${err.message}`);
        resolve();
      });
      proc.on('exit', (code, signal) => {
        clearInterval(timer);
        follow();
        resolve();
        if (this.stopping) return;
        this.unexpectedExit(code, signal, Date.now() - startedAt);
      });
    });
  }

  /** Reads the lines added to the log file since `offset` (call repeatedly). */
  private follow(offset: number): () => void {
    let position = offset;
    let partial = '';
    return () => {
      let fd: number;
      try {
        fd = fs.openSync(this.spec.logFile, 'r');
      } catch {
        return;
      }
      try {
        const chunk = Buffer.alloc(64 * 1024);
        let n: number;
        while ((n = fs.readSync(fd, chunk, 0, chunk.length, position)) > 0) {
          position += n;
          partial += chunk.subarray(0, n).toString();
        }
      } finally {
        fs.closeSync(fd);
      }
      let i: number;
      while ((i = partial.indexOf('\n')) >= 0) {
        this.line(partial.slice(0, i));
        partial = partial.slice(i + 1);
      }
    };
  }

  private line(text: string): void {
    if (text.trim() === '') return;
    this.lines.push(text);
    if (this.lines.length > TAIL_LINES) this.lines.shift();
    // The children log JSON lines; their warnings and errors reach the console, the rest the log file.
    let entry: { level?: unknown; msg?: unknown } | undefined;
    try {
      const parsed: unknown = JSON.parse(text);
      entry = typeof parsed === 'object' && parsed !== null ? parsed : undefined;
    } catch {
      entry = undefined;
    }
    // A line that is not JSON is a crash's stack or Node's own warning: always shown.
    if (entry === undefined) this.events.say(`${this.spec.name}: ${redact(text, this.spec.secrets)}`);
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
