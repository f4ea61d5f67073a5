/**
 * In-process dispatch (embedded mode): a FIFO queue of recording ids and at most
 * `concurrency` running at once. What "running" means is the runner's business.
 */
import type { Logger } from "../util/log.js";
import { errorMessage } from "../util/errors.js";

/** A running unit of work that can be asked to stop. */
export interface RunningJob {
  stop(reason: "stopped" | "deleted"): void;
  /** Resolves when the job has reached a terminal state. */
  done: Promise<void>;
}

/** Starts the work for `id`; the returned job must always settle. */
export type Runner = (id: string) => RunningJob;

/** Where a stop request landed. */
export type StopOutcome = "dequeued" | "stopping" | "unknown";

export class InProcessDispatcher {
  private readonly queue: string[] = [];
  private readonly running = new Map<string, RunningJob>();
  private closed = false;

  constructor(private readonly concurrency: number, private readonly runner: Runner, private readonly log: Logger) {}

  /** Number of jobs running now. */
  get active(): number {
    return this.running.size;
  }

  /** Number of ids waiting for a slot. */
  get waiting(): number {
    return this.queue.length;
  }

  /** True when another recording can start at once. */
  get hasCapacity(): boolean {
    return !this.closed && this.running.size < this.concurrency;
  }

  /** Queues `id`; it starts as soon as a slot is free. */
  submit(id: string): void {
    if (this.closed) throw new Error("dispatcher is closed");
    this.queue.push(id);
    this.pump();
  }

  /**
   * Stops `id`: removes it from the queue (`dequeued`, the caller ends it) or asks the running
   * job to stop (`stopping`); `unknown` when this dispatcher has neither.
   */
  stop(id: string, reason: "stopped" | "deleted" = "stopped"): StopOutcome {
    const i = this.queue.indexOf(id);
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
    while (!this.closed && this.running.size < this.concurrency && this.queue.length > 0) {
      const id = this.queue.shift()!;
      let job: RunningJob;
      try {
        job = this.runner(id);
      } catch (err) {
        this.log.error({ recordingId: id, err: errorMessage(err) }, "could not start job");
        continue;
      }
      this.running.set(id, job);
      void job.done.catch((err) => this.log.error({ recordingId: id, err: errorMessage(err) }, "job crashed"))
        .finally(() => {
          this.running.delete(id);
          this.pump();
        });
    }
  }

  /**
   * Stops taking work, stops every running job and waits for them (their media is finalized).
   * Queued ids are returned so the caller can end them.
   */
  async close(): Promise<string[]> {
    this.closed = true;
    const left = this.queue.splice(0);
    for (const job of this.running.values()) job.stop("stopped");
    await Promise.allSettled([...this.running.values()].map((j) => j.done));
    return left;
  }
}
