/**
 * Delivery: hands finished recordings over and tells platforms about changes, retrying each
 * target with capped exponential backoff until it succeeds. Every attempt is stored. Deliveries
 * of one recording to one target go out in order (a later event waits for the earlier one).
 * What each target sends, and when, is the target's ({@link DeliveryTargets}); the rules here
 * hold for all of them:
 *
 * - `notify` deliveries (webhooks, platform callbacks, e-mail) are created on status changes.
 * - `file` deliveries (platform upload, S3, spool) are created when a recording reaches
 *   `delivering` (or ends `failed` with a file); once all of them have succeeded a
 *   `delivering` recording becomes `completed`. A failed delivery never deletes anything.
 * - A delivery still failing `delivery.giveUpAfterSeconds` after its first attempt is given up
 *   (`failed`, with a `delivery_given_up` event), and so is one the receiver refused for good
 *   (the target throws `DeliveryRefused`) at once; a `delivering` recording whose file delivery
 *   was given up ends `failed` (`delivery_failed`), its file kept for a `redeliver`.
 * - Each attempt reads the recording as it is then (metadata changed by `PATCH` included).
 */
import type { Config } from "../config/index.js";
import { DELIVERY_FAILED, type Delivery, type Recording, type RecordingStatus, type RecordingStore } from "../store/index.js";
import { errorMessage } from "../util/errors.js";
import type { Logger } from "../util/log.js";
import { EgressPolicy } from "../egress/index.js";
import { DeliveryRefused, type DeliveryContext, type DeliveryTargets } from "./registry.js";

/** What the sender needs from the process around it: what an attempt may use ({@link DeliveryContext}), the targets, and an observer. */
export interface DeliveryDeps extends Omit<DeliveryContext, "backend" | "egress"> {
  /** Every target deliveries may name. */
  targets: DeliveryTargets;
  /** Observes each attempt (metrics): `kind` is the target up to its first `:`. */
  onAttempt?(kind: string, ok: boolean): void;
}

/** `seconds` for people: `3 days`, `2 h`, `1.5 s`. */
function humanSeconds(seconds: number): string {
  if (seconds >= 86400) return `${+(seconds / 86400).toFixed(1)} day${seconds === 86400 ? "" : "s"}`;
  if (seconds >= 3600) return `${+(seconds / 3600).toFixed(1)} h`;
  if (seconds >= 60) return `${+(seconds / 60).toFixed(1)} min`;
  return `${+seconds.toFixed(3)} s`;
}

/** Delay before attempt `n + 1` after `n` failed attempts, ms (capped, ±20 % jitter). */
export function backoffMs(failedAttempts: number, retry: Config["delivery"]["retry"], random = Math.random): number {
  const base = Math.min(retry.maxDelayMs, retry.initialDelayMs * retry.factor ** Math.max(0, failedAttempts - 1));
  return Math.round(base * (0.8 + 0.4 * random()));
}

/**
 * Queues the deliveries a status change calls for ({@link DeliveryTargets.planChange}), in the
 * store. Runs wherever statuses change (the embedded server, every cluster worker and API
 * process); a {@link DeliveryService} sends what it queued.
 */
export class DeliveryPlanner {
  constructor(private readonly d: {
    store: RecordingStore; log: Logger; targets: DeliveryTargets;
    /** The recording as the API shows it, links relative (made absolute by the sender). */
    describe(rec: Recording): unknown;
    /** Deliveries were queued (the embedded sender looks at once). */
    queued?(): void;
  }) {
    d.store.onTransition((rec, from) => {
      void this.onTransition(rec, from).catch((err) => d.log.error({ recordingId: rec.id, err: errorMessage(err) }, "could not queue deliveries"));
    });
  }

  private async onTransition(rec: Recording, from: RecordingStatus): Promise<void> {
    const planned = this.d.targets.planChange(rec, { from, view: this.d.describe(rec) });
    for (const p of planned) await this.d.store.addDelivery({ recordingId: rec.id, ...p });
    this.d.queued?.();
  }
}

/**
 * Sends the queued deliveries: each due one, first in line for its recording and target, with
 * retries and give-up (see the module doc).
 */
export class DeliveryService {
  private timer?: NodeJS.Timeout;
  private readonly inFlight = new Set<string>();
  private running: Promise<void> = Promise.resolve();
  private closed = false;
  /** The egress policy outgoing deliveries are held to (`egress.allow`). */
  private readonly egress: EgressPolicy;

  constructor(private readonly deps: DeliveryDeps) {
    this.egress = new EgressPolicy(deps.config.egress.allow);
  }

  /**
   * Starts sending (the retry loop). Until then deliveries only wait in the store (queued by a
   * {@link DeliveryPlanner}, in this process or a cluster worker).
   */
  start(): void {
    if (this.closed || this.timer) return;
    this.timer = setInterval(() => this.kick(), this.deps.config.delivery.pollIntervalMs);
    this.timer.unref();
    this.kick();
  }

  /** Stops sending (attempts in flight finish); {@link DeliveryService.start} resumes. */
  pause(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Runs a tick soon (after new work was queued). */
  kick(): void {
    if (this.closed || !this.timer) return;
    this.running = this.running.then(() => this.tick()).catch(() => undefined);
  }

  /**
   * One pass: starts every due delivery that is first in line for its recording + target —
   * none once paused or closed, also when the pause came while the pass read the store (a
   * cluster API that lost the leadership must start nothing more).
   */
  async tick(): Promise<void> {
    if (this.closed || !this.timer) return;
    const now = Date.now();
    const firstInLine = new Set<string>();
    const pending = await this.deps.store.pendingDeliveries();
    if (this.closed || !this.timer) return;
    for (const d of pending) {
      const lane = `${d.recordingId}\u0000${d.target}`;
      if (firstInLine.has(lane)) continue;
      firstInLine.add(lane);
      if (this.inFlight.has(lane) || Date.parse(d.nextAttemptAt) > now) continue;
      this.inFlight.add(lane);
      void this.attempt(d).finally(() => { this.inFlight.delete(lane); });
    }
  }

  private async attempt(d: Delivery): Promise<void> {
    const { store, config } = this.deps;
    const log = this.deps.log.child({ recordingId: d.recordingId, target: d.target, attempt: d.attempts + 1 });
    const startedAt = new Date();
    const rec = await store.get(d.recordingId); // as it is now: metadata changed since the delivery was queued counts
    if (!rec) return;
    try {
      const detail = await this.deliver(d, rec);
      const after = await store.recordAttempt(d.id, { ok: true, message: detail }, { startedAt });
      this.deps.onAttempt?.(d.target.split(":")[0], true);
      log.info({ detail }, "delivered");
      if (d.kind === "file" && after.status === "succeeded") await this.completeIfDelivered(rec.id);
    } catch (err) {
      const message = errorMessage(err);
      const giveUpSeconds = config.delivery.giveUpAfterSeconds;
      const refused = err instanceof DeliveryRefused;
      const after = await store.recordAttempt(d.id, { ok: false, message, retryInMs: backoffMs(d.attempts + 1, config.delivery.retry), giveUpAfterMs: refused ? 0 : giveUpSeconds * 1000 }, {
        startedAt,
        givenUp: (x) => ({
          type: "delivery_given_up",
          message: refused
            ? `Gave up delivering to ${x.target}: the receiver refused it for good (not retried); ${message}`
            : `Gave up delivering to ${x.target} after ${humanSeconds(giveUpSeconds)} of failures (${x.attempts} attempts); last error: ${message}`,
          data: { target: x.target, kind: x.kind, attempts: x.attempts, firstAttemptAt: x.firstAttemptAt, lastError: message },
        }),
      });
      this.deps.onAttempt?.(d.target.split(":")[0], false);
      if (after.status === "failed") {
        log.error({ err: message }, "delivery given up");
        if (d.kind === "file") await this.failIfGivenUp(rec.id);
      } else {
        // The stored message is what clients see; the cause (with local paths) is for the log only.
        const cause = err instanceof Error && err.cause !== undefined ? errorMessage(err.cause) : undefined;
        log.warn({ err: message, cause, nextAttemptAt: after.nextAttemptAt }, "delivery failed; will retry");
      }
    }
  }

  /**
   * Ends a `delivering` recording `failed` (`delivery_failed`) when one of its file deliveries
   * was given up. The file stays; `redeliver` tries again.
   */
  private async failIfGivenUp(id: string): Promise<void> {
    const rec = await this.deps.store.get(id);
    if (rec?.status !== "delivering") return;
    const failed = (await this.deps.store.deliveries(id)).filter((x) => x.kind === "file" && x.status === "failed");
    if (failed.length === 0) return;
    const what = failed.map((x) => `${x.target} (${x.lastError ?? "no error recorded"})`).join("; ");
    const message = `The file could not be delivered to ${what}; delivery was given up after ${humanSeconds(this.deps.config.delivery.giveUpAfterSeconds)}. `
      + `The file is kept: fix the cause (for metadata, PATCH /v1/recordings/${id}), then POST /v1/recordings/${id}/redeliver to try again.`;
    await this.deps.store.transition(id, "failed", { reason: DELIVERY_FAILED, error: { code: DELIVERY_FAILED, message } })
      .catch((err) => this.deps.log.warn({ recordingId: id, err: errorMessage(err) }, "could not mark the recording failed after its delivery was given up"));
  }

  /** One attempt through the delivery's target. @throws what the target throws; Error when the backend or the target is gone. */
  private async deliver(d: Delivery, rec: Recording): Promise<string> {
    const { config, store, log, describe, withBase, filePath, fileUrl, trackPaths } = this.deps;
    const backend = config.backends[rec.backend];
    if (!backend) throw new Error(`backend ${rec.backend} is no longer configured`);
    const target = this.deps.targets.get(d.target);
    if (!target) throw new Error(`unknown delivery target ${d.target}`);
    return target.deliver(d, rec, { config, store, log, describe, withBase, filePath, fileUrl, ...(trackPaths ? { trackPaths } : {}), backend, egress: this.egress });
  }

  private async completeIfDelivered(id: string): Promise<void> {
    const rec = await this.deps.store.get(id);
    if (rec?.status !== "delivering") return;
    const files = (await this.deps.store.deliveries(id)).filter((x) => x.kind === "file");
    if (files.every((x) => x.status === "succeeded")) {
      await this.deps.store.transition(id, "completed", { reason: "delivered", message: `Delivered to ${files.map((x) => x.target).join(", ")}` });
    }
  }

  /**
   * Delivers `rec` again by hand: every unfinished delivery (pending or given up) is retried
   * now, and the file is sent again to each file target that has nothing unfinished (an
   * importer may have lost it). A recording that failed because its delivery was given up
   * (`delivery_failed`) goes back to `delivering` ({@link RecordingStore.redeliver}). One
   * redelivery at a time: until each delivery it made due has been attempted, another is
   * refused. Returns how many deliveries are now due (0: nothing to deliver, nothing changed).
   * @throws MeetrecError `conflict` while a redelivery is pending (nothing changed).
   */
  async redeliver(rec: Recording): Promise<number> {
    const n = await this.deps.store.redeliver(rec.id, rec.file ? this.deps.targets.fileTargets(rec) : []);
    this.kick();
    return n;
  }

  /**
   * Queues the file deliveries of a `delivering` recording that has none (after a crash between
   * the two), and settles one whose deliveries all succeeded or one was given up.
   */
  async ensureFileDeliveries(rec: Recording): Promise<void> {
    const existing = new Set((await this.deps.store.deliveries(rec.id)).filter((d) => d.kind === "file").map((d) => d.target));
    for (const target of this.deps.targets.fileTargets(rec)) {
      if (!existing.has(target)) await this.deps.store.addDelivery({ recordingId: rec.id, target, kind: "file" });
    }
    await this.completeIfDelivered(rec.id);
    await this.failIfGivenUp(rec.id); // given up just before a crash
  }

  /** Stops the loop and waits for attempts under way. */
  async close(): Promise<void> {
    this.closed = true;
    this.pause();
    await this.running;
    while (this.inFlight.size > 0) await new Promise((r) => setTimeout(r, 50));
  }
}
