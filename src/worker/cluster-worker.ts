/**
 * `meetrec worker`: a recording machine of the cluster. It takes recording jobs from the BullMQ
 * queue while they fit its capacity, claims each recording in PostgreSQL (a lease epoch that
 * fences off any previous holder), records with segments mirrored to the segment bucket, and
 * finalizes into the bucket.
 *
 * Failover: the BullMQ job lock is the worker's heartbeat (renewed every `lockDurationMs / 2`).
 * A worker that stops renewing it (killed, machine gone) has its jobs moved back to the queue
 * by the other workers' stalled-job check after at most `lockDurationMs + stalledIntervalMs`;
 * the worker that takes one resumes the recording from the bucket's manifest in a new period.
 *
 * SIGTERM: the worker stops taking jobs and hands each live recording over (open segment
 * closed and uploaded, job back to the queue at once) when another worker is alive, or stops
 * and finalizes it when it is the only one.
 */
import { hostname } from "node:os";
import { join } from "node:path";
import { readdirSync } from "node:fs";
import { DelayedError, Worker, type Job } from "bullmq";
import type { Redis } from "ioredis";
import { SharedPulse, defaultPulseDir, killRegisteredProcesses } from "../capture/index.js";
import { mediaRoot, segmentBucket, type Config } from "../config/index.js";
import { Capacity, ClusterBus, type CapacitySnapshot, type RecordJobData } from "../dispatch/index.js";
import { redisConnection } from "../dispatch/queue.js";
import { RecordingBucket, RecordingMedia, type SegmentMirror } from "../media/index.js";
import { Metrics } from "../metrics/index.js";
import { RecordingStore, TERMINAL, type EndReason, type Recording } from "../store/index.js";
import { MeetrecError, errorMessage } from "../util/errors.js";
import type { Logger } from "../util/log.js";
import { platformAdapter } from "../talk/index.js";
import { DeliveryService } from "../delivery/index.js";
import { toView } from "../app/view.js";
import { RecordingJob, finalizeRecording, type JobDeps } from "./recording-job.js";

/** See module doc. {@link ClusterWorker.start}, then {@link ClusterWorker.shutdown}. */
export class ClusterWorker {
  readonly name: string;
  readonly metrics: Metrics;
  private readonly running = new Map<string, RecordingJob>();
  /** Each recording's run on this worker, until it has fully left (see `process`). */
  private readonly runs = new Map<string, Promise<unknown>>();
  /** The newest job lock token of each recording running here (its job may come back while it runs). */
  private readonly tokens = new Map<string, string | undefined>();
  private readonly mirrors = new Map<string, SegmentMirror>();
  private worker?: Worker<RecordJobData>;
  private bus!: ClusterBus;
  private redis!: Redis;
  private readonly pulse: SharedPulse;
  private announceTimer?: NodeJS.Timeout;
  private draining = false;
  private readonly capacity: Capacity;
  /** Never started here: it only queues the deliveries of this worker's status changes (the API sends them). */
  private readonly delivery: DeliveryService;

  private constructor(readonly config: Config, readonly store: RecordingStore, private readonly log: Logger) {
    this.name = config.cluster.workerName ?? `${hostname()}-${process.pid}`;
    this.capacity = Capacity.fromConfig(config);
    this.pulse = new SharedPulse(config.capture.pulseDir ?? defaultPulseDir(), config.capture.pulseaudioPath);
    this.metrics = new Metrics({
      worker: this.name,
      statusCounts: () => store.countByStatus(),
      active: () => this.running.size,
      queued: () => 0,
      pendingSegments: () => [...this.mirrors.values()].reduce((n, m) => n + m.backlog, 0),
      capacity: () => this.capacity.snapshot(),
    });
    const base = config.publicUrl?.replace(/\/$/, "") ?? "http://localhost";
    this.delivery = new DeliveryService({
      config, store, log, describe: (rec) => toView(rec, base),
      filePath: async () => { throw new MeetrecError("internal", "workers do not send deliveries"); },
    });
  }

  /**
   * Connects to PostgreSQL and Redis and starts taking jobs.
   * @throws MeetrecError `config_invalid` when cluster settings or the segment bucket are missing; `store_failed`.
   */
  static async start(config: Config, log: Logger): Promise<ClusterWorker> {
    const c = config.cluster;
    if (!c.redisUrl || !c.postgresUrl) throw new MeetrecError("config_invalid", "meetrec worker needs cluster.redisUrl and cluster.postgresUrl (MEETREC_CLUSTER__REDIS_URL, MEETREC_CLUSTER__POSTGRES_URL)");
    if (!config.segments.s3) throw new MeetrecError("config_invalid", "meetrec worker needs a segment bucket (segments.s3): another worker continues a recording from it");
    const store = await RecordingStore.openPostgres(c.postgresUrl);
    const w = new ClusterWorker(config, store, log.child({ worker: config.cluster.workerName ?? `${hostname()}-${process.pid}` }));
    w.killLeftovers();
    w.redis = redisConnection(c.redisUrl);
    w.redis.on("error", (err) => w.log.warn({ err: errorMessage(err) }, "redis connection error"));
    w.bus = new ClusterBus(c.queue, w.redis, c.redisUrl);
    await w.bus.onStop((id, reason) => {
      const job = w.running.get(id);
      if (job) {
        w.log.info({ recordingId: id, reason }, "stop signal");
        job.stop(reason === "deleted" ? "deleted" : "stopped");
      }
    });
    w.worker = new Worker<RecordJobData>(c.queue, (job, token) => w.process(job, token), {
      connection: redisConnection(c.redisUrl), concurrency: config.concurrency, name: w.name,
      lockDuration: c.lockDurationMs, stalledInterval: c.stalledIntervalMs, maxStalledCount: 1_000_000,
    });
    w.worker.on("error", (err) => w.log.warn({ err: errorMessage(err) }, "queue worker error"));
    w.worker.on("stalled", (jobId) => w.log.warn({ recordingId: jobId }, "a recording's worker stopped heart-beating; its job goes to another worker"));
    const announce = () => void w.bus.announce({ name: w.name, active: w.running.size, capacity: w.snapshot() }, 3000).catch(() => undefined);
    announce();
    w.announceTimer = setInterval(announce, 1000);
    w.announceTimer.unref();
    w.log.info({ queue: c.queue, concurrency: config.concurrency, lockDurationMs: c.lockDurationMs }, "worker taking jobs");
    return w;
  }

  /** This worker's capacity as `/readyz` and the cluster see it (nothing fits while draining). */
  snapshot(): CapacitySnapshot {
    const s = this.capacity.snapshot();
    return this.draining ? { ...s, canAccept: { video: false, audio: false } } : s;
  }

  get active(): number {
    return this.running.size;
  }

  /** Capture processes a killed previous run of this worker left behind. */
  private killLeftovers(): void {
    const work = join(this.config.dataDir, "work");
    let ids: string[] = [];
    try { ids = readdirSync(work); } catch { /* none */ }
    for (const id of ids) {
      const killed = killRegisteredProcesses(join(work, id));
      if (killed.length) this.log.warn({ recordingId: id, killed: killed.map((k) => `${k.role}:${k.pid}`) }, "killed capture processes left by a previous run");
    }
  }

  private async process(job: Job<RecordJobData>, token?: string): Promise<void> {
    const { id } = job.data;
    const log = this.log.child({ recordingId: id });
    const rec = await this.store.get(id);
    if (!rec || TERMINAL.includes(rec.status) || rec.status === "delivering") return;
    const current = this.running.get(id);
    if (current && !current.departure) {
      // Its job came back to this worker while the recording still runs here (the lock expired,
      // e.g. while Redis restarted): carry on with the same run — no new period, no gap. This
      // call now holds the job's lock until the run ends, and acts on a hand-over.
      log.warn("its job came back to this worker while it still records it; carrying on");
      this.tokens.set(id, token);
      await this.runs.get(id);
      if (current.departure === "handed_over") {
        await job.moveToDelayed(Date.now(), token);
        throw new DelayedError();
      }
      return;
    }
    const refusal = this.capacity.refusal(rec.options); // what this recording costs: its frame size and rate
    if (this.draining || (refusal && !(refusal === "cpu" && this.running.size === 0))) {
      await job.moveToDelayed(Date.now() + (this.draining ? 200 : 1000), token);
      throw new DelayedError(); // back to the queue for a worker with room
    }
    const epoch = await this.store.claim(id, this.name);
    log.info({ status: rec.status, epoch, attempt: job.attemptsStarted }, "took the recording");
    // Its job came back to this same worker (e.g. the lock expired while Redis restarted): the
    // claim above fences the older run; it must have left (sink, work directory) before this one starts.
    const previous = this.runs.get(id);
    if (previous) {
      log.warn("an older run of this recording is still leaving this worker; waiting for it");
      await previous.catch(() => undefined);
    }
    const rec2 = await this.store.get(id);
    if (!rec2 || TERMINAL.includes(rec2.status) || rec2.status === "delivering") return;
    let settle!: () => void;
    const run = new Promise<void>((r) => { settle = r; });
    this.runs.set(id, run);
    this.tokens.set(id, token);
    try {
      await this.runClaimed(job, token, rec2, epoch);
    } finally {
      settle();
      if (this.runs.get(id) === run) { this.runs.delete(id); this.tokens.delete(id); }
    }
  }

  private async runClaimed(job: Job<RecordJobData>, token: string | undefined, rec: Recording, epoch: number): Promise<void> {
    const id = rec.id;
    this.capacity.take(rec.options);
    try {
      if (rec.status === "stopping" || rec.status === "finalizing") {
        await this.finalizeLeft(rec.id);
        return;
      }
      const deps: JobDeps = {
        config: this.config, store: this.store, pulse: () => this.pulse.get(), log: this.log, uploadFinal: true,
        adapterFor: (r) => platformAdapter(this.config, r),
        ...this.metrics.jobHooks("failover"),
        onMirror: (mid, mirror) => this.mirrors.set(mid, mirror),
      };
      const rj = new RecordingJob(rec, deps, {
        resume: rec.status !== "queued",
        lease: { epoch, holds: () => this.store.holds(id, this.name, epoch), stopRequested: () => this.store.stopRequested(id), intervalMs: this.config.cluster.leaseCheckMs },
      });
      this.running.set(id, rj);
      if (rec.status !== "queued") await this.store.addEvent(id, "taken_over", `Worker ${this.name} continues the recording`, { worker: this.name, epoch });
      try {
        await rj.run();
      } finally {
        if (this.running.get(id) === rj) this.running.delete(id);
        this.mirrors.delete(id);
      }
      if (rj.departure === "handed_over") {
        await this.store.release(id, this.name, epoch);
        // Only the call holding the newest lock can move the job (an older one's token is void).
        if (this.tokens.get(id) !== token) return;
        await job.moveToDelayed(Date.now(), token);
        throw new DelayedError();
      }
      if (rj.departure !== "fenced") await this.store.release(id, this.name, epoch);
    } finally {
      this.capacity.release(rec.options);
    }
  }

  /** A worker died while the recording was ending: finalize it from the bucket. */
  private async finalizeLeft(id: string): Promise<void> {
    await finalizeFromBucket(this.config, this.store, this.log, (await this.store.get(id))!);
  }

  /**
   * SIGTERM: stop taking jobs; hand live recordings to other workers, or finish them when no
   * other worker is alive; then disconnect. Resolves when everything is closed.
   */
  async shutdown(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    clearInterval(this.announceTimer);
    await this.bus.withdraw(this.name).catch(() => undefined);
    const others = (await this.bus.workers().catch(() => [])).filter((w) => w.name !== this.name && w.capacity.canAccept.video);
    this.log.info({ live: this.running.size, otherWorkers: others.length }, others.length ? "shutting down: handing recordings over" : "shutting down: no other worker, finishing recordings");
    for (const job of this.running.values()) {
      if (others.length) job.handOver();
      else job.stop("stopped");
    }
    await this.worker?.close();
    await this.delivery.close();
    await this.bus.close();
    await this.redis.quit().catch(() => undefined);
    await this.pulse.close();
    await this.store.close();
  }
}

/**
 * Finalizes `rec` from what its segment bucket (and this machine) holds, uploading the final
 * file to the bucket; a live recording is moved to `stopping` first. `endReason`: the stop that
 * was asked for, else the recording's own, else `stopped`.
 */
export async function finalizeFromBucket(config: Config, store: RecordingStore, log: Logger, rec: Recording): Promise<Recording> {
  const root = mediaRoot(config, rec.backend);
  const media = await RecordingMedia.open(root, rec.id, { mode: rec.options.mode, segmentSeconds: config.capture.segmentSeconds });
  const cfg = segmentBucket(config, rec.backend);
  const remote = cfg ? await new RecordingBucket(cfg, rec.id).getManifest() : undefined;
  if (remote) await media.adopt(remote);
  const endReason = ((await store.stopRequested(rec.id)) ?? rec.endReason ?? "stopped") as EndReason;
  let cur = rec;
  if (cur.status === "starting" || cur.status === "recording") cur = await store.transition(rec.id, "stopping", { reason: "recovered" });
  if (cur.status === "queued") return store.transition(rec.id, "aborted", { reason: "recovered", message: "Never started", endReason: "stopped" });
  return finalizeRecording({ config, store, log: log.child({ recordingId: rec.id }), uploadFinal: true }, cur, media, { endReason, abortWhenEmpty: true });
}
