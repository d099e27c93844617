// Process figures from /proc for the .mjs benchmarks (reader.mjs, snapshot.mjs): CPU time, peak RSS, the
// broker's process.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const CLK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

/** utime + stime of a process in seconds, or null once it is gone. */
export function cpuOf(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields 14 and 15, counted after the parenthesised command name (which may hold spaces).
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK;
  } catch {
    return null;
  }
}

/** A process's peak RSS (VmHWM) in MB. */
export const peakRssMb = (pid) => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;

/** The broker: the process listening on the first of `brokers`' ports (ss -ltnp), or null. */
export function brokerPid(brokers) {
  const port = brokers.split(',')[0].split(':').pop();
  try {
    const out = execFileSync('ss', ['-ltnpH', `sport = :${port}`], { encoding: 'utf8' });
    return Number(/pid=(\d+)/.exec(out)?.[1]) || null;
  } catch {
    return null;
  }
}

/**
 * The reader's heap flags as the container runs it (Dockerfile, package.json "reader:dist"), for the
 * benchmarks. BENCH_COMPARE_NODE_FLAGS (space-separated) replaces them for a BENCH_COMPARE_DIST build's
 * reader, so that a pair of rounds can compare flags on one build.
 */
export const READER_HEAP_FLAGS = ['--max-old-space-size=128', '--max-semi-space-size=8'];
export const compareHeapFlags = () =>
  process.env.BENCH_COMPARE_NODE_FLAGS ? process.env.BENCH_COMPARE_NODE_FLAGS.split(' ').filter(Boolean) : READER_HEAP_FLAGS;

/**
 * BENCH_COMPARE_ENV ("NAME=value NAME2=value2"): settings for the BENCH_COMPARE_DIST build's reader
 * only, over the run's, to compare settings on one build in the same rounds (e.g. reader threads).
 */
export function compareEnv() {
  const out = {};
  for (const pair of (process.env.BENCH_COMPARE_ENV ?? '').split(' ').filter(Boolean)) {
    const at = pair.indexOf('=');
    if (at < 1) throw new Error(`BENCH_COMPARE_ENV: "${pair}" is not NAME=value`);
    out[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return out;
}
