/**
 * The recorder node: what records on this machine, in both modes. It owns the machine's
 * PulseAudio daemon, the capacity (admission), the metrics and the running jobs, and it clears
 * what a killed previous run left behind (capture processes under *every* media root). The
 * embedded host feeds it from the in-process dispatcher ({@link RecorderNode.runner}); the
 * cluster worker feeds it from the queue ({@link RecorderNode.run} with a lease).
 */
import { readdirSync } from "node:fs";
import { CaptureSession, SharedPulse, WarmPool, defaultPulseDir, killRegisteredProcesses, removeLeftoverProfiles, type PulseServer, type SessionHooks, type SessionOptions } from "../capture/index.js";
import type { Config } from "../config/index.js";
import { Capacity, type RunningJob } from "../dispatch/index.js";
import { mediaRoots, runWorkDir, workDir, workRoot } from "../media/index.js";
import { Metrics } from "../metrics/index.js";
import type { Recording, RecordingStore } from "../store/index.js";
import type { Logger } from "../util/log.js";
import { cpuSeconds, processTree } from "../util/proc.js";
import { RecordingJob, type JobObserver, type JobOptions, type StopReason } from "./job.js";
import { planRecording, type PlanContext, type RecordingPlan } from "./plan.js";

/**
 * How long after a running recording's last degraded segment (more than 5 % of its frames
 * repeated or dropped) this machine admits nothing new, ms: two and a half 2 s segments, so one
 * clean segment is not enough to call the overload over.
 */
const OVERLOAD_HOLD_MS = 5000;

/** How often the node measures what each capturing recording costs (capacity learns it), ms. */
const COST_SAMPLE_MS = 5000;

/** What a node is made of. */
export interface RecorderNodeOptions {
  config: Config;
  store: RecordingStore;
  log: Logger;
  /** This machine's name in metrics (label `worker`). */
  name: string;
  /** How a resumed period counts in `meetrec_failovers_total`: `restart` (embedded) or `failover` (cluster worker). */
  failoverReason: "restart" | "failover";
  /** How recordings are planned here, beyond the capture settings (see {@link PlanContext}). */
  planning: Omit<PlanContext, "capture">;
  /** Recordings waiting for this machine (the embedded dispatcher's queue; none on a cluster worker). */
  queued?(): number;
  /** Told what every job does, besides the metrics (tests). */
  observer?: JobObserver;
}

/** A process a previous run left, killed by {@link RecorderNode.killLeftovers}. */
export interface KilledLeftover {
  recordingId: string;
  /** `role:pid` of each process killed. */
  killed: string[];
}

/** See module doc. */
export class RecorderNode {
  readonly capacity: Capacity;
  readonly metrics: Metrics;
  private readonly pulse: SharedPulse;
  private readonly jobs = new Map<string, RecordingJob>();
  /** Runs started and not yet ended (a run has a job once its recording was read). */
  private runs = 0;
  /** Per job: its capture processes and their CPU time at the last measurement. */
  private readonly costSeen = new Map<RecordingJob, { pids: string; cpuS: number; atMs: number }>();
  private readonly costTimer: NodeJS.Timeout;
  /** Warm capture stacks (`capture.warmBrowsers` > 0), filled once {@link startPool} is called. */
  private readonly pool?: WarmPool;

  constructor(private readonly o: RecorderNodeOptions) {
    const { config, store } = o;
    this.capacity = Capacity.fromConfig(config);
    // Measured overload: a recording here fell behind within OVERLOAD_HOLD_MS → admit nothing new.
    this.capacity.watchOverload(() => [...this.jobs.values()].some((j) => j.degradedAt > 0 && Date.now() - j.degradedAt < OVERLOAD_HOLD_MS));
    this.pulse = new SharedPulse(config.capture.pulseDir ?? defaultPulseDir(), config.capture.pulseaudioPath);
    this.metrics = new Metrics({
      worker: o.name,
      statusCounts: () => store.countByStatus(),
      active: () => this.runs,
      queued: () => o.queued?.() ?? 0,
      pendingSegments: () => [...this.jobs.values()].reduce((n, j) => n + j.pendingSegments, 0),
      capacity: () => this.capacity.snapshot(),
      meetings: () => [...this.jobs.values()].flatMap((j) => {
        const m = j.meeting;
        return m && m.at > 0 ? [{ recording: j.id, participants: m.participants, audio: m.media.audio, video: m.media.video }] : [];
      }),
      frames: () => [...this.jobs.values()].flatMap((j) => (j.frames ? [{ recording: j.id, ...j.frames }] : [])),
      ...(config.capture.warmBrowsers > 0 ? { warmStacks: () => this.pool?.size ?? 0 } : {}),
    });
    if (config.capture.warmBrowsers > 0) {
      // Sized by capacity: never more waiting stacks than recordings of the default size the CPU budget left has room for.
      const defaultVideo = { mode: "video" as const, video: config.video };
      this.pool = new WarmPool({
        target: () => Math.min(config.capture.warmBrowsers, Math.floor((this.capacity.budget - this.capacity.booked) / this.capacity.cost(defaultVideo) + 1e-9)),
        stage: async (id) => ({
          recordingId: id, url: "about:blank", join: [], mode: "video", browser: "chromium", video: config.video, capture: config.capture,
          workDir: workDir(mediaRoots(config)[0], id), pulse: await this.pulse.get(),
        }),
        log: o.log,
      });
    }
    this.costTimer = setInterval(() => {
      if (config.capacity.learnCost) this.measureCosts();
      this.refillPool();
    }, COST_SAMPLE_MS);
    this.costTimer.unref();
  }

  /**
   * Measures each capturing recording's processes (display, browser and their children,
   * encoder) over the last {@link COST_SAMPLE_MS} and tells the capacity (it learns the cost per
   * pixel × fps from them). A run's first window after it began capturing, a paused run and a
   * run whose processes changed (a rejoin, an encoder restart) only set a new baseline.
   */
  private measureCosts(): void {
    const now = Date.now();
    for (const job of [...this.costSeen.keys()]) if (!this.jobs.has(job.id) || this.jobs.get(job.id) !== job) this.costSeen.delete(job);
    for (const job of this.jobs.values()) {
      const pids = job.capturing;
      if (!pids) { this.costSeen.delete(job); continue; }
      const roots = [pids.display, pids.sinkPin, pids.browser, pids.encoder].filter((p): p is number => p !== undefined);
      const key = roots.join(",");
      const cpuS = processTree(roots).reduce((sum, pid) => sum + cpuSeconds(pid), 0);
      const prev = this.costSeen.get(job);
      this.costSeen.set(job, { pids: key, cpuS, atMs: now });
      if (!prev || prev.pids !== key || now <= prev.atMs) continue;
      this.capacity.learn({ mode: job.plan.mode, video: job.plan.video }, (cpuS - prev.cpuS) / ((now - prev.atMs) / 1000));
    }
  }

  private poolStarted = false;

  /**
   * Starts keeping warm capture stacks (`capture.warmBrowsers`; nothing when 0), refilled in the
   * background after each is taken, every {@link COST_SAMPLE_MS} and after each run. Call after
   * {@link killLeftovers}.
   */
  startPool(): void {
    this.poolStarted = true;
    this.refillPool();
  }

  /** Tops the warm stacks up, once {@link startPool} was called. */
  private refillPool(): void {
    if (this.poolStarted) this.pool?.fill();
  }

  /** How every run here gets its capture session: a warm stack when one fits, else a new session. */
  private session(o: SessionOptions, hooks: SessionHooks): CaptureSession {
    const warm = this.pool?.take(o, hooks);
    this.metrics.captureStarts.inc({ stack: warm ? "warm" : "cold" });
    if (warm) o.log.info({ warmProfile: warm.options.recordingId }, "recording on a warm capture stack");
    return warm ?? new CaptureSession(o, hooks);
  }

  /** Recordings running on this machine now. */
  get active(): number {
    return this.runs;
  }

  /** The running job of recording `id`, if any. */
  job(id: string): RecordingJob | undefined {
    return this.jobs.get(id);
  }

  /** Every running job. */
  running(): RecordingJob[] {
    return [...this.jobs.values()];
  }

  /**
   * The machine's PulseAudio daemon (started on first use), for a capture session opened before
   * its recording exists (OpenVidu's quick start). @throws MeetrecError `audio_failed`.
   */
  pulseServer(): Promise<PulseServer> {
    return this.pulse.get();
  }

  /** `rec`'s plan on this machine. */
  plan(rec: Recording): RecordingPlan {
    return planRecording({ ...this.o.planning, capture: this.o.config.capture }, rec);
  }

  /**
   * Kills the capture processes killed previous runs left under every media root's work
   * directory (`work/{id}/{run}/pids.json`, and `work/{id}/pids.json` of older versions; a
   * registry whose meetrec still lives is left alone). Their scratch directories stay: they may
   * hold segments closed after meetrec died; their browser profiles (system temp directory) are
   * removed. Never throws. Call before anything records here.
   * `roots`: the media roots to look under (default: every root of the configuration).
   */
  killLeftovers(roots: string[] = mediaRoots(this.o.config)): KilledLeftover[] {
    const out: KilledLeftover[] = [];
    const dirs = (d: string) => { try { return readdirSync(d, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name); } catch { return []; } };
    for (const root of roots) {
      for (const id of dirs(workRoot(root))) {
        const runs = [workDir(root, id), ...dirs(workDir(root, id)).map((run) => runWorkDir(root, id, run))];
        const killed = runs.flatMap((d) => killRegisteredProcesses(d)).map((k) => `${k.role}:${k.pid}`);
        if (killed.length === 0) continue;
        this.o.log.warn({ recordingId: id, killed }, "killed capture processes left by the previous run");
        out.push({ recordingId: id, killed });
      }
    }
    const profiles = removeLeftoverProfiles();
    if (profiles.length) this.o.log.info({ count: profiles.length }, "removed browser profiles left by a killed meetrec");
    return out;
  }

  /**
   * Runs `rec` to its end on this machine (see {@link RecordingJob.run}) and returns the job
   * (its `departure` says whether it left the recording to another worker).
   */
  async run(rec: Recording, opts: JobOptions = {}): Promise<RecordingJob> {
    const job = this.create(rec, opts);
    this.runs++;
    try {
      await job.run();
    } finally {
      this.runs--;
      if (this.jobs.get(rec.id) === job) this.jobs.delete(rec.id);
      this.refillPool();
    }
    return job;
  }

  private create(rec: Recording, opts: JobOptions): RecordingJob {
    const { config, store, log } = this.o;
    const job = new RecordingJob(rec, this.plan(rec), { store, log, pulse: () => this.pulse.get(), observer: this.observer() }, { flushTimeoutMs: config.segments.flushTimeoutMs, session: (o, h) => this.session(o, h), ...opts });
    this.jobs.set(rec.id, job);
    return job;
  }

  /** The jobs' observer: the metrics, then the node's own. */
  private observer(): JobObserver {
    const m = this.metrics;
    const extra = this.o.observer;
    return {
      period: (e) => {
        // A pause is not lost media: nothing was meant to be captured.
        if (e.index > 1 && e.reason !== "unpause") {
          m.lostMediaSeconds.inc({ reason: e.reason }, e.gapMs / 1000);
          if (e.reason === "resume") m.failovers.inc({ reason: this.o.failoverReason });
        }
        extra?.period?.(e);
      },
      segmentStored: (e) => {
        m.segmentStoreSeconds.observe({ store: e.store }, e.seconds);
        extra?.segmentStored?.(e);
      },
      frames: (f) => {
        for (const kind of ["encoded", "duplicated", "dropped"] as const) m.videoFrames.inc({ kind }, f[kind]);
        extra?.frames?.(f);
      },
      session: (s) => extra?.session?.(s),
    };
  }

  /**
   * The embedded dispatcher's runner: starts recording `id` (read from the store; a recording
   * no longer `queued`/`starting`/`recording` is skipped) and returns a handle whose `done`
   * always settles. A stop that arrives before the job exists is kept, not lost.
   */
  runner(): (id: string) => RunningJob {
    return (id) => {
      let job: RecordingJob | undefined;
      let pendingStop: StopReason | undefined;
      this.runs++;
      const done = (async () => {
        try {
          const rec = await this.o.store.get(id);
          if (!rec || !["queued", "starting", "recording"].includes(rec.status)) return;
          job = this.create(rec, { resume: rec.status !== "queued" });
          if (pendingStop) job.stop(pendingStop);
          await job.run();
        } finally {
          this.runs--;
          if (job && this.jobs.get(id) === job) this.jobs.delete(id);
          this.refillPool();
        }
      })();
      return { stop: (reason: StopReason) => (job ? job.stop(reason) : void (pendingStop ??= reason)), done };
    };
  }

  /** Closes the warm capture stacks, and stops the machine's sound daemon if this process started it. Jobs must have ended. */
  async close(): Promise<void> {
    clearInterval(this.costTimer);
    await this.pool?.close();
    await this.pulse.close();
  }
}
