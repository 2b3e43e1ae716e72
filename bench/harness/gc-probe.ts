/**
 * Preloaded (`node --expose-gc --import gc-probe.mjs …`) into both servers of the idle-memory
 * scenario, so neither needs a gc endpoint: on SIGUSR2 it runs a full gc (twice, so weak
 * callbacks and finalisers of the first one are collected too) and writes `process.memoryUsage()`
 * to the file named by `BENCH_MEMORY_REPORT` (and, for `bench/profile.ts`, a heap snapshot). Nothing
 * else runs in the server's process.
 * Self-contained; transpiled and run as plain JavaScript like `raw-server.ts`.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeHeapSnapshot } from 'node:v8';

const target = process.env.BENCH_MEMORY_REPORT;
/** `bench/profile.ts idleMemory` only: a heap snapshot after each gc, into this directory. */
const snapshots = process.env.BENCH_HEAP_SNAPSHOT_DIR;
const collect = (globalThis as { gc?: () => void }).gc;
let taken = 0;

if (target !== undefined && target !== '') {
  process.on('SIGUSR2', () => {
    collect?.();
    collect?.();
    const report = { ...process.memoryUsage(), gcForced: collect !== undefined, at: Date.now() };
    const heapSnapshot =
      snapshots === undefined || snapshots === ''
        ? undefined
        : writeHeapSnapshot(join(snapshots, `heap-${(taken += 1)}.heapsnapshot`));
    // Written whole, then renamed: the reader never sees half a report.
    writeFileSync(`${target}.tmp`, JSON.stringify({ ...report, heapSnapshot }));
    renameSync(`${target}.tmp`, target);
  });
}
