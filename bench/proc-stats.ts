/**
 * Per-process CPU and memory figures from Linux /proc, for the benchmarks (not used at run time).
 * https://man7.org/linux/man-pages/man5/proc_pid_stat.5.html
 */
import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc CPU times (USER_HZ); 100 on every mainstream Linux build. */
const USER_HZ = 100;

/** CPU time (user + system, all threads) a process used so far, ms; 0 when it is gone. */
export function cpuMsOf(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    // Fields after the ")" that closes the command name: state is field 3, utime 14, stime 15.
    const fields = (readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1] ?? '').split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / USER_HZ;
  } catch {
    return 0;
  }
}

/** Resident set size of a process now, bytes; 0 when it is gone. */
export function rssOf(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}

/** Busy CPU time of the whole machine so far (all cores, everything but idle and iowait), ms. */
export function machineBusyMs(): number {
  const f = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  return ((f.reduce((a, b) => a + b, 0) - idle) * 1000) / USER_HZ;
}

/** Pid of the local broker started by scripts/kafka-local.sh, if it runs. */
export function brokerPid(): number | undefined {
  try {
    const pid = Number(readFileSync('.kafka/broker.pid', 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}
