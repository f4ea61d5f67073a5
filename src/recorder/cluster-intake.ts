/**
 * A cluster worker's intake: it takes recording jobs from the BullMQ queue while they fit the
 * node's capacity, claims each recording in PostgreSQL (a lease epoch that fences off any
 * previous holder), and has the {@link RecorderNode} record it with segments mirrored to the
 * segment bucket and the final file uploaded there.
 *
 * Failover: the BullMQ job lock is the worker's heartbeat (renewed every `lockDurationMs / 2`).
 * A worker that stops renewing it (killed, machine gone) has its jobs moved back to the queue
 * by the other workers' stalled-job check after at most `lockDurationMs + stalledIntervalMs`;
 * the worker that takes one resumes the recording from the bucket's manifest in a new period.
 *
 * SIGTERM ({@link ClusterIntake.drain}): the worker stops taking jobs and hands each live
 * recording over (open segment closed and uploaded, job back to the queue at once) when another
 * worker is alive, or stops and finalizes it when it is the only one.
 */
import { DelayedError, Worker, type Job } from "bullmq";
import type { Config } from "../config/index.js";
import { ClusterBus, redisConnection, type CapacitySnapshot, type RecordJobData } from "../dispatch/index.js";
import { TERMINAL, type Recording, type RecordingStore } from "../store/index.js";
import { errorMessage } from "../util/errors.js";
import type { Logger } from "../util/log.js";
import type { RecorderNode } from "./node.js";
import type { Recovery } from "./recovery.js";

/** What the intake works with. */
export interface ClusterIntakeDeps {
  config: Config;
  store: RecordingStore;
  log: Logger;
  node: RecorderNode;
  /** Finalizes recordings a dead worker left while they were ending. */
  recovery: Recovery;
  /** The cluster's bus (stop signals, the live workers' announcements). */
  bus: ClusterBus;
  /** This worker's name (queue worker name, lease holder, announcements). */
  name: string;
}

/** See module doc. {@link ClusterIntake.start}, then {@link ClusterIntake.drain}. */
export class ClusterIntake {
  /** Each recording's run on this worker, until it has fully left (see `process`). */
  private readonly runs = new Map<string, Promise<unknown>>();
  /** The newest job lock token of each recording running here (its job may come back while it runs). */
  private readonly tokens = new Map<string, string | undefined>();
  private worker?: Worker<RecordJobData>;
  private announceTimer?: NodeJS.Timeout;
  private draining = false;

  constructor(private readonly d: ClusterIntakeDeps) {}

  /** This worker's capacity as `/readyz` and the cluster see it (nothing fits while draining). */
  snapshot(): CapacitySnapshot {
    const s = this.d.node.capacity.snapshot();
    return this.draining ? { ...s, canAccept: { video: false, audio: false } } : s;
  }

  /** Subscribes to stop signals, starts taking jobs and announcing this worker. */
  async start(): Promise<void> {
    const { config, bus, node, log, name } = this.d;
    const c = config.cluster;
    await bus.onStop((id, reason) => {
      const job = node.job(id);
      if (job) {
        log.info({ recordingId: id, reason }, "stop signal");
        job.stop(reason === "deleted" ? "deleted" : "stopped");
      }
    });
    this.worker = new Worker<RecordJobData>(c.queue, (job, token) => this.process(job, token), {
      connection: redisConnection(c.redisUrl!), concurrency: config.concurrency, name,
      lockDuration: c.lockDurationMs, stalledInterval: c.stalledIntervalMs, maxStalledCount: 1_000_000,
    });
    this.worker.on("error", (err) => log.warn({ err: errorMessage(err) }, "queue worker error"));
    this.worker.on("stalled", (jobId) => log.warn({ recordingId: jobId }, "a recording's worker stopped heart-beating; its job goes to another worker"));
    const announce = () => void bus.announce({ name, active: node.active, capacity: this.snapshot() }, 3000).catch(() => undefined);
    announce();
    this.announceTimer = setInterval(announce, 1000);
    this.announceTimer.unref();
    log.info({ queue: c.queue, concurrency: config.concurrency, lockDurationMs: c.lockDurationMs }, "worker taking jobs");
  }

  private async process(job: Job<RecordJobData>, token?: string): Promise<void> {
    const { store, node } = this.d;
    const { id } = job.data;
    const log = this.d.log.child({ recordingId: id });
    const rec = await store.get(id);
    if (!rec || TERMINAL.includes(rec.status) || rec.status === "delivering") return;
    const current = node.job(id);
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
    const refusal = node.capacity.refusal(rec.options); // what this recording costs: its frame size and rate
    if (this.draining || (refusal && !(refusal === "cpu" && node.active === 0))) {
      await job.moveToDelayed(Date.now() + (this.draining ? 200 : 1000), token);
      throw new DelayedError(); // back to the queue for a worker with room
    }
    const epoch = await store.claim(id, this.d.name);
    log.info({ status: rec.status, epoch, attempt: job.attemptsStarted }, "took the recording");
    // Its job came back to this same worker (e.g. the lock expired while Redis restarted): the
    // claim above fences the older run; it must have left (sink, work directory) before this one starts.
    const previous = this.runs.get(id);
    if (previous) {
      log.warn("an older run of this recording is still leaving this worker; waiting for it");
      await previous.catch(() => undefined);
    }
    const rec2 = await store.get(id);
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
    const { store, node, config, name } = this.d;
    const id = rec.id;
    node.capacity.take(rec.options);
    try {
      if (rec.status === "stopping" || rec.status === "finalizing") {
        // A worker died while the recording was ending: finalize it from the bucket.
        await this.d.recovery.finalizeLeft(rec);
        return;
      }
      if (rec.status !== "queued") await store.addEvent(id, { type: "taken_over", message: `Worker ${name} continues the recording`, data: { worker: name, epoch } });
      const rj = await node.run(rec, {
        resume: rec.status !== "queued",
        lease: { epoch, holds: () => store.holds(id, name, epoch), stopRequested: () => store.stopRequested(id), intervalMs: config.cluster.leaseCheckMs },
      });
      if (rj.departure === "handed_over") {
        await store.release(id, name, epoch);
        // Only the call holding the newest lock can move the job (an older one's token is void).
        if (this.tokens.get(id) !== token) return;
        await job.moveToDelayed(Date.now(), token);
        throw new DelayedError();
      }
      if (rj.departure !== "fenced") await store.release(id, name, epoch);
    } finally {
      node.capacity.release(rec.options);
    }
  }

  /**
   * SIGTERM: stop taking jobs; hand live recordings to other workers, or finish them when no
   * other worker is alive; resolves once the queue worker has closed (every run has ended).
   */
  async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    const { bus, node, log, name } = this.d;
    clearInterval(this.announceTimer);
    await bus.withdraw(name).catch(() => undefined);
    const others = (await bus.workers().catch(() => [])).filter((w) => w.name !== name && w.capacity.canAccept.video);
    log.info({ live: node.active, otherWorkers: others.length }, others.length ? "shutting down: handing recordings over" : "shutting down: no other worker, finishing recordings");
    for (const job of node.running()) {
      if (others.length) job.handOver();
      else job.stop("stopped");
    }
    await this.worker?.close();
  }
}
