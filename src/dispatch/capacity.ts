/**
 * Admission by capacity: a worker declares a CPU budget (cores) and what one recording of each
 * kind costs to begin with (cores: Xvfb + browser + encoder, measured in docs/benchmarks.md; a
 * video recording's cost scales with its pixels × frame rate, see {@link recordingCost}) — then
 * learns each kind and size from what its running recordings measure ({@link Capacity.learn}) —
 * and takes a recording only when its cost fits in what is left, the machine has the free
 * memory asked for and the data filesystem has room for the disk guard twice over — and, measured rather than
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
  /** Cores one recording of each kind costs now (video: a 1280×720@30 one): as measured here, else as configured. */
  cost: Record<RecordingKind, number>;
  /** Every workload measured here and what it costs, cores: `audio`, `video:{width}x{height}@{fps}`. */
  measured: Record<string, number>;
  /** Whether one more recording of each kind fits now (video: a 1280×720@30 one). */
  canAccept: Record<RecordingKind, boolean>;
  /** Why a 1280×720@30 video recording would be refused now, if it would. */
  refusal?: Exclude<Refusal, undefined>;
}

/** Weight of one measurement in a learned cost (exponential moving average over the measurements). */
export const COST_LEARN_WEIGHT = 0.3;

/** A workload's kind and, for video, its frame size and rate (a bare `video` is {@link REFERENCE_VIDEO}). */
function workloadKey(w: Workload): string {
  const mode = typeof w === "string" ? w : w.mode;
  if (mode === "audio") return "audio";
  const v = (typeof w === "string" ? undefined : w.video) ?? REFERENCE_VIDEO;
  return `video:${v.width}x${v.height}@${v.fps}`;
}

/**
 * Tracks the CPU booked by running recordings. Free memory and disk are read at each check.
 * The cost of a recording starts as configured (`capacity.cost`) and, once the recorder node
 * has measured running sessions of that kind and size ({@link Capacity.learn}), follows what
 * they cost here.
 */
export class Capacity {
  /** The running recordings' workloads (their cost is summed at each check, with the costs known then). */
  private readonly running: Workload[] = [];
  readonly budget: number;
  private overloaded?: () => boolean;
  /** Costs learned from measured sessions, cores, per workload (kind and, for video, size and rate). */
  private readonly learned = new Map<string, number>();

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

  /**
   * Cores the recording `w` takes on this worker: what recordings of its kind, size and rate
   * measured here ({@link learn}), else {@link recordingCost} with `capacity.cost`. A size not
   * measured yet is not extrapolated from another: the fixed part of a session (browser, its
   * WebRTC decoding) does not scale with pixels, so the model's floor would double a small
   * recording's measurement into a reference one's.
   */
  cost(w: Workload): number {
    return this.learned.get(workloadKey(w)) ?? recordingCost(this.s.cost, w);
  }

  /**
   * A running recording `w` was measured to take `cores` (its display, browser and encoder
   * processes over a window): the cost of its workload moves towards it by
   * {@link COST_LEARN_WEIGHT} (the first measurement is taken as it is). Ignores non-finite or
   * negative values.
   */
  learn(w: Workload, cores: number): void {
    if (!Number.isFinite(cores) || cores < 0) return;
    const key = workloadKey(w);
    const prev = this.learned.get(key);
    this.learned.set(key, prev === undefined ? cores : prev + COST_LEARN_WEIGHT * (cores - prev));
  }

  /** Cores booked by the running recordings, at today's costs. */
  get booked(): number {
    return this.running.reduce((sum, w) => sum + this.cost(w), 0);
  }

  /** Whether the recording `w` fits now, or the first reason it does not. */
  refusal(w: Workload): Refusal {
    if (this.booked + this.cost(w) > this.budget + 1e-9) return "cpu";
    if (this.overloaded?.()) return "overloaded";
    if (freemem() < this.s.minFreeMemoryBytes) return "memory";
    if (this.freeDisk() < this.s.minFreeDiskBytes) return "disk";
    return undefined;
  }

  /** Books the recording `w` (call when it starts). */
  take(w: Workload): void {
    this.running.push(w);
  }

  /** Frees what the recording `w` booked (call when it ends, with what was given to {@link take}). */
  release(w: Workload): void {
    const key = workloadKey(w);
    const i = this.running.findIndex((x) => x === w || workloadKey(x) === key);
    if (i >= 0) this.running.splice(i, 1);
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
    const used = this.booked;
    return {
      cpuBudget: this.budget, cpuUsed: round(used), cpuLeft: round(Math.max(0, this.budget - used)),
      cost: { video: round(this.cost("video")), audio: round(this.cost("audio")) },
      measured: Object.fromEntries([...this.learned].map(([k, v]) => [k, round(v)])),
      freeMemoryBytes: freemem(), freeDiskBytes: this.freeDisk(),
      canAccept: { video: !this.refusal("video"), audio: !this.refusal("audio") },
      refusal: this.refusal("video"),
    };
  }
}

const round = (x: number) => Math.round(x * 1000) / 1000;
