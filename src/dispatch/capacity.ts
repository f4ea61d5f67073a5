/**
 * Admission by capacity: a worker declares a CPU budget (cores) and what one recording of each
 * kind costs (cores: Xvfb + browser + encoder, measured in docs/benchmarks.md), and takes a
 * recording only when its cost fits in what is left, the machine has the free memory asked for
 * and the data filesystem has room for the disk guard twice over.
 */
import { statfsSync } from "node:fs";
import { availableParallelism, freemem } from "node:os";
import type { Config } from "../config/index.js";

/** What a recording costs, by kind. */
export type RecordingKind = "video" | "audio";

export interface CapacitySettings {
  /** Cores this worker may use for recordings; default: all of the machine's. */
  cpuBudget?: number;
  /** Cores one recording takes, by kind. */
  cost: Record<RecordingKind, number>;
  /** Free memory (bytes, MemAvailable) below which nothing new starts. */
  minFreeMemoryBytes: number;
  /** Free bytes on the data filesystem below which nothing new starts. */
  minFreeDiskBytes: number;
}

/** Why a recording does not fit now (`undefined` when it does). */
export type Refusal = "cpu" | "memory" | "disk" | undefined;

/** A view of the capacity for `/readyz` and metrics. */
export interface CapacitySnapshot {
  cpuBudget: number;
  cpuUsed: number;
  cpuLeft: number;
  freeMemoryBytes: number;
  freeDiskBytes: number;
  /** Whether one more recording of each kind fits now. */
  canAccept: Record<RecordingKind, boolean>;
  /** Why a video recording would be refused now, if it would. */
  refusal?: Exclude<Refusal, undefined>;
}

/** Tracks the CPU booked by running recordings. Free memory and disk are read at each check. */
export class Capacity {
  private used = 0;
  readonly budget: number;

  /** `dataDir`: the filesystem checked for free space. */
  constructor(private readonly s: CapacitySettings, private readonly dataDir: string) {
    this.budget = s.cpuBudget ?? availableParallelism();
  }

  /**
   * This machine's capacity as configured: `capacity.*`, and free disk on `dataDir` for twice
   * `capture.diskReserveBytes` (the disk guard's reserve, with room for one more recording).
   */
  static fromConfig(config: Config): Capacity {
    const c = config.capacity;
    return new Capacity({
      cpuBudget: c.cpuBudget, cost: c.cost, minFreeMemoryBytes: c.minFreeMemoryBytes, minFreeDiskBytes: 2 * config.capture.diskReserveBytes,
    }, config.dataDir);
  }

  /** Whether a recording of `kind` fits now, or the first reason it does not. */
  refusal(kind: RecordingKind): Refusal {
    if (this.used + this.s.cost[kind] > this.budget + 1e-9) return "cpu";
    if (freemem() < this.s.minFreeMemoryBytes) return "memory";
    if (this.freeDisk() < this.s.minFreeDiskBytes) return "disk";
    return undefined;
  }

  /** Books the cost of a recording of `kind` (call when it starts). */
  take(kind: RecordingKind): void {
    this.used += this.s.cost[kind];
  }

  /** Returns the cost of a recording of `kind` (call when it ends). */
  release(kind: RecordingKind): void {
    this.used = Math.max(0, this.used - this.s.cost[kind]);
  }

  private freeDisk(): number {
    try {
      const st = statfsSync(this.dataDir);
      return st.bavail * st.bsize;
    } catch {
      return Infinity; // not created yet: the job reports the real error
    }
  }

  snapshot(): CapacitySnapshot {
    return {
      cpuBudget: this.budget, cpuUsed: round(this.used), cpuLeft: round(Math.max(0, this.budget - this.used)),
      freeMemoryBytes: freemem(), freeDiskBytes: this.freeDisk(),
      canAccept: { video: !this.refusal("video"), audio: !this.refusal("audio") },
      refusal: this.refusal("video"),
    };
  }
}

const round = (x: number) => Math.round(x * 1000) / 1000;
