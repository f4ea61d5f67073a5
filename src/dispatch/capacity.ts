/**
 * Admission by capacity: a worker declares a CPU budget (cores) and what one recording of each
 * kind costs (cores: Xvfb + browser + encoder, measured in docs/benchmarks.md; a video
 * recording's cost scales with its pixels × frame rate, see {@link recordingCost}), and takes a
 * recording only when its cost fits in what is left, the machine has the free memory asked for
 * and the data filesystem has room for the disk guard twice over — and, measured rather than
 * estimated, only while no running recording on this machine is falling behind (its encoder
 * repeating or dropping frames: {@link Capacity.watchOverload}).
 */
import { statfsSync } from "node:fs";
import { availableParallelism, freemem } from "node:os";
import type { Config } from "../config/index.js";

/** What a recording costs, by kind. */
export type RecordingKind = "video" | "audio";

/**
 * What admission needs to know of a recording: its kind and, for video, its frame size (px) and
 * rate (fps) — a recording's stored options fit as they are. A bare kind stands for the
 * reference recording of that kind ({@link REFERENCE_VIDEO} for video).
 */
export type Workload = RecordingKind | { mode: RecordingKind; video?: { width: number; height: number; fps: number } };

/** The video recording `capacity.cost.video` is the cost of: 1280×720 px at 30 fps. */
export const REFERENCE_VIDEO = { width: 1280, height: 720, fps: 30 } as const;

/**
 * Floor of a video recording's cost, as a fraction of `capacity.cost.video`: Xvfb, the browser
 * running the meeting (its WebRTC decoding does not shrink with the output) and the encoder's
 * fixed work cost this much even for a tiny picture.
 */
export const MIN_VIDEO_COST_FACTOR = 0.5;

/**
 * Cores one recording takes: audio → `cost.audio`; video → `cost.video` × (width · height · fps)
 * / (1280 · 720 · 30), at least {@link MIN_VIDEO_COST_FACTOR} × `cost.video` (so 1920×1080@30
 * costs 2.25×, 640×360@15 the floor of 0.5×). The one place a recording's cost is computed.
 */
export function recordingCost(cost: Record<RecordingKind, number>, w: Workload): number {
  const mode = typeof w === "string" ? w : w.mode;
  if (mode === "audio") return cost.audio;
  const v = (typeof w === "string" ? undefined : w.video) ?? REFERENCE_VIDEO;
  const scale = (v.width * v.height * v.fps) / (REFERENCE_VIDEO.width * REFERENCE_VIDEO.height * REFERENCE_VIDEO.fps);
  return cost.video * Math.max(MIN_VIDEO_COST_FACTOR, scale);
}

export interface CapacitySettings {
  /** Cores this worker may use for recordings; default: all of the machine's. */
  cpuBudget?: number;
  /** Cores one recording of each kind takes: audio, and a 1280×720@30 video one (see {@link recordingCost}). */
  cost: Record<RecordingKind, number>;
  /** Free memory (bytes, MemAvailable) below which nothing new starts. */
  minFreeMemoryBytes: number;
  /** Free bytes on the data filesystem below which nothing new starts. */
  minFreeDiskBytes: number;
}

/**
 * Why a recording does not fit now (`undefined` when it does): the CPU budget, free memory, free
 * disk, or `overloaded` — a running recording here is falling behind now, whatever the budget says.
 */
export type Refusal = "cpu" | "memory" | "disk" | "overloaded" | undefined;

/** A view of the capacity for `/readyz` and metrics. */
export interface CapacitySnapshot {
  cpuBudget: number;
  cpuUsed: number;
  cpuLeft: number;
  freeMemoryBytes: number;
  freeDiskBytes: number;
  /** Whether one more recording of each kind fits now (video: a 1280×720@30 one). */
  canAccept: Record<RecordingKind, boolean>;
  /** Why a 1280×720@30 video recording would be refused now, if it would. */
  refusal?: Exclude<Refusal, undefined>;
}

/** Tracks the CPU booked by running recordings. Free memory and disk are read at each check. */
export class Capacity {
  private used = 0;
  readonly budget: number;
  private overloaded?: () => boolean;

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

  /**
   * Measured overload: `overloaded()` says whether a recording running here is falling behind
   * now (recorder/node.ts: a segment with more than 5 % of its frames repeated or dropped in the
   * last seconds); while it does, nothing new is admitted (`overloaded`), since one more would
   * make every recording here worse.
   */
  watchOverload(overloaded: () => boolean): void {
    this.overloaded = overloaded;
  }

  /** Cores the recording `w` takes on this worker ({@link recordingCost} with this worker's `capacity.cost`). */
  cost(w: Workload): number {
    return recordingCost(this.s.cost, w);
  }

  /** Whether the recording `w` fits now, or the first reason it does not. */
  refusal(w: Workload): Refusal {
    if (this.used + this.cost(w) > this.budget + 1e-9) return "cpu";
    if (this.overloaded?.()) return "overloaded";
    if (freemem() < this.s.minFreeMemoryBytes) return "memory";
    if (this.freeDisk() < this.s.minFreeDiskBytes) return "disk";
    return undefined;
  }

  /** Books the cost of the recording `w` (call when it starts). */
  take(w: Workload): void {
    this.used += this.cost(w);
  }

  /** Returns the cost of the recording `w` (call when it ends, with what was given to {@link take}). */
  release(w: Workload): void {
    this.used = Math.max(0, this.used - this.cost(w));
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
