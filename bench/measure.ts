/**
 * Timing of single requests: wall clock (hrtime) and the measuring process's CPU time
 * (user + system, all threads). On a loaded machine the wall clock includes time the
 * process waited for a core; the CPU time does not, so it is the steadier figure of what
 * the code itself costs. The services run in another process and are not in it.
 */
import type { Series } from './model';
import { summarize } from './stats';

/** Samples of one series. */
export class Recorder {
  readonly wall: number[] = [];
  readonly cpu: number[] = [];
  misses = 0;

  /** Runs one request and records it; `fn` returns whether it was a cache hit. */
  async time(fn: () => Promise<boolean>): Promise<void> {
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    const hit = await fn();
    const wall = Number(process.hrtime.bigint() - t0) / 1e6;
    const cpu = process.cpuUsage(cpu0);
    this.wall.push(wall);
    this.cpu.push((cpu.user + cpu.system) / 1000);
    if (!hit) this.misses++;
  }

  get count(): number {
    return this.wall.length;
  }

  series(): Series {
    return { wall: summarize(this.wall), cpu: summarize(this.cpu), misses: this.misses };
  }
}

/** A time budget: `left()` in ms, `over()` once spent. */
export class Budget {
  private readonly end: number;
  constructor(ms: number) {
    this.end = Date.now() + ms;
  }
  left(): number {
    return this.end - Date.now();
  }
  over(): boolean {
    return Date.now() >= this.end;
  }
}

/** Progress on stdout, with the seconds since the run started. */
export function progress(message: string): void {
  const s = (process.uptime() - startedAt).toFixed(1).padStart(6);
  process.stdout.write(`[${s}s] ${message}\n`);
}
const startedAt = process.uptime();
