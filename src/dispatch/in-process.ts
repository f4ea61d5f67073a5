/**
 * In-process dispatch (embedded mode): a queue of recording ids, started in order as long as
 * fewer than `concurrency` run and the next one fits the {@link Capacity} (a cheaper recording
 * may pass one that does not fit the CPU left). What "running" means is the runner's business.
 */
import type { Logger } from "../util/log.js";
import { errorMessage } from "../util/errors.js";
import type { Capacity, RecordingKind, Workload } from "./capacity.js";
import type { Dispatcher, Readiness, StopOutcome } from "./types.js";

/** A running unit of work that can be asked to stop. */
export interface RunningJob {
  stop(reason: "stopped" | "deleted"): void;
  /** Resolves when the job has reached a terminal state. */
  done: Promise<void>;
}

/** Starts the work for `id`; the returned job must always settle. */
export type Runner = (id: string) => RunningJob;

export class InProcessDispatcher implements Dispatcher {
  private readonly queue: { id: string; work: Workload }[] = [];
  private readonly running = new Map<string, RunningJob>();
  private closed = false;
  private retry?: NodeJS.Timeout;

  constructor(private readonly concurrency: number, private readonly runner: Runner, private readonly log: Logger, readonly capacity?: Capacity) {}

  /** Number of jobs running now. */
  get active(): number {
    return this.running.size;
  }

  /** Number of ids waiting for a slot. */
  get waiting(): number {
    return this.queue.length;
  }

  async readiness(): Promise<Readiness> {
    return { ready: this.hasCapacity("video"), active: this.active, queued: this.waiting, capacity: this.capacity?.snapshot() };
  }

  /** True when another recording of `kind` (default video, 1280×720@30) can start at once. */
  hasCapacity(kind: RecordingKind = "video"): boolean {
    return !this.closed && this.running.size < this.concurrency && !this.capacity?.refusal(kind);
  }

  /** Queues `id`; it starts as soon as there is room for what `work` costs (see {@link Capacity.cost}). */
  submit(id: string, work: Workload = "video"): void {
    if (this.closed) throw new Error("dispatcher is closed");
    this.queue.push({ id, work });
    this.pump();
  }

  /**
   * Stops `id`: removes it from the queue (`dequeued`, the caller ends it) or asks the running
   * job to stop (`stopping`); `unknown` when this dispatcher has neither.
   */
  stop(id: string, reason: "stopped" | "deleted" = "stopped"): StopOutcome {
    const i = this.queue.findIndex((q) => q.id === id);
    if (i >= 0) {
      this.queue.splice(i, 1);
      return "dequeued";
    }
    const job = this.running.get(id);
    if (!job) return "unknown";
    job.stop(reason);
    return "stopping";
  }

  /** Resolves when the running job `id` has ended (immediately when it is not running). */
  async settled(id: string): Promise<void> {
    await this.running.get(id)?.done;
  }

  private pump(): void {
    clearTimeout(this.retry);
    for (let i = 0; !this.closed && this.running.size < this.concurrency && i < this.queue.length;) {
      const { id, work } = this.queue[i];
      const refusal = this.capacity?.refusal(work);
      // Over the CPU budget: a cheaper one further on may fit. (With nothing running it starts
      // anyway: a cost above the whole budget must not wait forever.)
      if (refusal === "cpu" && this.running.size > 0) { i++; continue; }
      if (refusal && refusal !== "cpu") break; // memory, disk, or a recording here falling behind: nothing fits
      this.queue.splice(i, 1);
      let job: RunningJob;
      try {
        job = this.runner(id);
      } catch (err) {
        this.log.error({ recordingId: id, err: errorMessage(err) }, "could not start job");
        continue;
      }
      this.capacity?.take(work);
      this.running.set(id, job);
      void job.done.catch((err) => this.log.error({ recordingId: id, err: errorMessage(err) }, "job crashed"))
        .finally(() => {
          this.running.delete(id);
          this.capacity?.release(work);
          this.pump();
        });
    }
    // Free memory and disk change without an event: look again while anything waits.
    if (!this.closed && this.queue.length > 0) {
      this.retry = setTimeout(() => this.pump(), 2000);
      this.retry.unref();
    }
  }

  /**
   * Stops taking work, stops every running job and waits for them (their media is finalized).
   * Queued ids are returned so the caller can end them.
   */
  async close(): Promise<string[]> {
    this.closed = true;
    clearTimeout(this.retry);
    const left = this.queue.splice(0).map((q) => q.id);
    for (const job of this.running.values()) job.stop("stopped");
    await Promise.allSettled([...this.running.values()].map((j) => j.done));
    return left;
  }
}
