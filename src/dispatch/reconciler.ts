/**
 * Job reconciler of the cluster's API role: finds recordings the store says are unfinished but
 * that no BullMQ job carries any more, and queues them again. A job goes missing when Redis
 * loses its data (restarted without persistence, failed over to an empty replica, flushed), or
 * when the API process died between storing a recording and queueing it; a job ends `failed`
 * when a worker's run threw (e.g. PostgreSQL unreachable at claim time). Without this sweep such
 * a recording stays `queued` / `recording` for ever — the "stuck in starting" failure.
 *
 * A run that fails keeps failing when its cause does (a bug, a recording the worker cannot
 * read): a recording whose job failed is re-queued at most {@link MAX_FAILED_REQUEUES} times,
 * then left with a `requeue_gave_up` event for an operator (`meetrec recover` finalizes it).
 *
 * A recording is re-queued only after two sweeps in a row (`intervalMs` apart) found its job
 * missing or dead, so the moment between storing a recording and queueing it, and the moment
 * between a worker's final status change and its job's completion, never trigger it. The worker
 * that takes the new job claims the recording (a new lease epoch, which fences any previous
 * holder) and resumes it in a new period, or carries on if it is the one still recording it.
 */
import type { Queue } from "bullmq";
import type { Logger } from "../util/log.js";
import { errorMessage } from "../util/errors.js";
import { TERMINAL, type EventOf, type RecordingStatus } from "../store/index.js";
import { addRecordJob, recordJobState, type RecordJobData } from "./queue.js";
import type { RecordingKind } from "./capacity.js";

/** How often a recording whose job failed is queued again before the reconciler gives up on it. */
export const MAX_FAILED_REQUEUES = 5;

/** What the reconciler reads from the store (a narrow view of `RecordingStore`). */
export interface ReconcilerStore {
  /** Recordings not yet terminal; `delivering` ones are skipped (the delivery loop has them). */
  listUnfinished(): Promise<Array<{ id: string; status: RecordingStatus; options: { mode: RecordingKind } }>>;
  /** Re-reads one recording's status (undefined when it was deleted meanwhile). */
  get(id: string): Promise<{ status: RecordingStatus } | undefined>;
  /** Appends to the recording's timeline: only the reconciler's own events. */
  addEvent(id: string, event: ReconcilerEvent): Promise<void>;
  /** The recording's timeline as stored (to count earlier re-queues; old rows are read loosely). */
  events(id: string): Promise<Array<{ type: string; data?: Record<string, unknown> | null }>>;
}

/** The timeline events the reconciler writes (store/timeline.ts). */
export type ReconcilerEvent = EventOf<"requeued" | "requeue_gave_up">;

/** One re-queued recording, as the sweep reports it. */
export interface Requeued {
  id: string;
  /** The recording's status when re-queued. */
  status: string;
  /** What had become of its job: `missing`, `completed`, `failed` or `unknown`. */
  jobState: string;
}

/** See module doc. Call {@link JobReconciler.sweep} every `intervalMs` (only on the leading API process). */
export class JobReconciler {
  /** Recordings whose job was seen dead by the previous sweep. */
  private suspects = new Set<string>();
  /** Recordings given up on (their job kept failing); not looked at again by this process. */
  private readonly abandoned = new Set<string>();

  constructor(
    private readonly queue: Queue<RecordJobData>,
    private readonly store: ReconcilerStore,
    private readonly log: Logger,
    private readonly onRequeue?: (r: Requeued) => void,
  ) {}

  /**
   * One pass over the unfinished recordings. Returns those re-queued by this pass.
   * Errors from Redis or the store are logged and end the pass; the next pass retries.
   */
  async sweep(): Promise<Requeued[]> {
    const done: Requeued[] = [];
    const seen = new Set<string>();
    try {
      for (const rec of await this.store.listUnfinished()) {
        if (rec.status === "delivering" || this.abandoned.has(rec.id)) continue;
        const { job, state, live } = await recordJobState(this.queue, rec.id);
        if (live) continue;
        seen.add(rec.id);
        if (!this.suspects.has(rec.id)) continue; // first sighting: look again next pass
        const now = await this.store.get(rec.id);
        if (!now || TERMINAL.includes(now.status) || now.status === "delivering") continue;
        const failedReason = state === "failed" ? job?.failedReason : undefined;
        if (state === "failed") {
          const earlier = (await this.store.events(rec.id)).filter((e) => e.type === "requeued" && e.data?.jobState === "failed").length;
          if (earlier >= MAX_FAILED_REQUEUES) {
            this.abandoned.add(rec.id);
            this.log.error({ recordingId: rec.id, failedReason, requeues: earlier }, "the recording's job keeps failing; no longer queuing it again (run meetrec recover)");
            await this.store.addEvent(rec.id, {
              type: "requeue_gave_up",
              message: `Its job failed ${earlier + 1} times (last: ${failedReason ?? "no reason"}); not queued again — run meetrec recover to finalize it`,
              data: { failedReason, requeues: earlier },
            });
            continue;
          }
        }
        if (job) await job.remove().catch(() => undefined);
        await addRecordJob(this.queue, rec.id, rec.options.mode);
        seen.delete(rec.id);
        const r: Requeued = { id: rec.id, status: now.status, jobState: state };
        this.log.warn({ recordingId: rec.id, status: now.status, jobState: state, failedReason }, "the recording had no live job (Redis lost it, or its run failed); queued it again");
        await this.store.addEvent(rec.id, {
          type: "requeued",
          message: `No job carried the recording (job ${state}${failedReason ? `: ${failedReason}` : ""}); queued it again`,
          data: { jobState: state, status: now.status, ...(failedReason ? { failedReason } : {}) },
        });
        this.onRequeue?.(r);
        done.push(r);
      }
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, "job reconcile pass failed; retrying on the next pass");
    }
    this.suspects = seen;
    return done;
  }
}
