import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/**
 * CPU accounting from /proc, one definition each, for the scenarios and the generator processes
 * alike (it imports only Node's own modules, so a generator built to plain JavaScript can use it).
 *
 * - a process's time: `utime + stime` of every thread (/proc/<pid>/stat fields 14 and 15);
 * - the machine's **busy** time: everything but idle, iowait and steal (user, nice, system, irq,
 *   softirq), over every core; **steal** (time the hypervisor gave to other guests) apart.
 */

/** Clock ticks per second of /proc's times (`getconf CLK_TCK`; 100 if it cannot say). */
export const CLOCK_TICKS_PER_SECOND = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

/** User and system time of every thread of `pid`, in ms. */
export function processCpu(pid: number, ticks = CLOCK_TICKS_PER_SECOND): { user: number; system: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  // Fields after the command name (which may contain spaces): state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: (Number(fields[11]) * 1000) / ticks, system: (Number(fields[12]) * 1000) / ticks };
}

/** User + system time of every thread of `pid`, in ms. */
export function processCpuMs(pid: number, ticks = CLOCK_TICKS_PER_SECOND): number {
  const { user, system } = processCpu(pid, ticks);
  return user + system;
}

/** The whole machine's busy and steal time since boot, in ms (see above). */
export function machineCpu(ticks = CLOCK_TICKS_PER_SECOND): { busy: number; steal: number } {
  const line = readFileSync('/proc/stat', 'latin1').slice(0, 200).split('\n')[0] ?? '';
  const [, user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = line.split(/\s+/u).map(Number);
  return { busy: ((user + nice + system + irq + softirq) * 1000) / ticks, steal: (steal * 1000) / ticks };
}

/** A field of /proc/<pid>/status (`VmRSS`, `VmHWM`), in bytes; NaN once the process is gone. */
export function memoryStatus(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(new RegExp(`${field}:\\s+(\\d+) kB`, 'u').exec(status)?.[1] ?? Number.NaN) * 1024;
  } catch {
    return Number.NaN;
  }
}
