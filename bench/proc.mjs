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
