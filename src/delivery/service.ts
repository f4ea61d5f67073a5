/**
 * Delivery: hands finished recordings over and tells platforms about changes, retrying each
 * target with capped exponential backoff until it succeeds. Every attempt is stored. Deliveries
 * of one recording to one target go out in order (a later event waits for the earlier one).
 *
 * - `notify` deliveries (webhooks) are created on every status change.
 * - `file` deliveries (spool; later S3, platform upload, e-mail) are created when a recording
 *   reaches `delivering` (or ends `failed` with a file); once all of them have succeeded a
 *   `delivering` recording becomes `completed`. A failed delivery never deletes anything.
 * - A delivery still failing `delivery.giveUpAfterSeconds` after its first attempt is given up
 *   (`failed`, with a `delivery_given_up` event); a `delivering` recording whose file delivery
 *   was given up ends `failed` (`delivery_failed`), its file kept for a `redeliver`.
 * - Each attempt reads the recording as it is then (metadata changed by `PATCH` included).
 *
 * Over 300 lines: the delivery loop with every target's dispatch, retry and give-up rules in one
 * place (issue 10 makes targets a registry).
 */
import type { Config, WebhookTarget } from "../config/index.js";
import { DELIVERY_FAILED, type Delivery, type Recording, type RecordingStatus, type RecordingStore } from "../store/index.js";
import { MeetrecError, errorMessage } from "../util/errors.js";
import type { Logger } from "../util/log.js";
import { deliverToSpool, spoolSubdir } from "./targets/spool.js";
import { uploadToS3 } from "./targets/s3.js";
import { emailRecipient, isEmailAddress, sendRecordingMail } from "./targets/email.js";
import { sendWebhook, type WebhookEvent } from "./targets/webhook.js";
import { ALLOW_ALL_BACKEND, sendTalkCallback, talkFileName, talkUploadFile, uploadRecordingToTalk, type TalkInfo } from "../platforms/talk/index.js";
import { EgressPolicy } from "../egress/index.js";

/** What the sender needs from the process around it. */
export interface DeliveryDeps {
  config: Config;
  store: RecordingStore;
  log: Logger;
  /** The recording as the API shows it, links absolute (spool sidecars, e-mail). */
  describe(rec: Recording): unknown;
  /** A view queued without a base (webhook payloads, {@link DeliveryPlanner}), its links made absolute. */
  withBase(view: unknown): unknown;
  /** Absolute local path of a recording's finished file (downloaded first when it is kept in a bucket). */
  filePath(rec: Recording): Promise<string>;
  /** Public download URL of the file (presigned bucket URL), when there is one. */
  fileUrl?(rec: Recording): Promise<string | undefined>;
  /** Observes each attempt (metrics): `kind` is the target up to its first `:`. */
  onAttempt?(kind: string, ok: boolean): void;
}

/** Whether a recording uses one of its backend's optional targets (per-recording `delivery.targets`, default all). */
function wants(rec: Pick<Recording, "options">, target: "s3" | "spool" | "email" | "webhooks"): boolean {
  return rec.options.delivery?.targets?.includes(target) ?? true;
}

/** Whether a recording came from a Talk conversation (Talk's start request; `metadata.talk`). */
function hasTalkConversation(rec: Pick<Recording, "metadata">): boolean {
  return typeof rec.metadata.talk === "object" && rec.metadata.talk !== null;
}

/**
 * Names of the file targets a recording must reach before it is `completed`. The Talk upload
 * is for recordings of a Talk conversation only: a native-API recording of a backend that is
 * also a Talk instance names no conversation to upload to.
 */
export function fileTargets(config: Config, rec: Pick<Recording, "backend" | "options" | "metadata">): string[] {
  const b = config.backends[rec.backend];
  return [
    ...(b?.talk && hasTalkConversation(rec) ? ["talk:upload"] : []),
    ...(b?.delivery.s3 && wants(rec, "s3") ? ["s3"] : []),
    ...(b?.delivery.spool && wants(rec, "spool") ? ["spool"] : []),
  ];
}

/** One value a recording's delivery targets need and cannot use. */
export interface DeliveryInputProblem {
  /** The request field: `metadata.{key}`. */
  field: string;
  message: string;
}

/**
 * What the recording's delivery targets (its backend's, narrowed by `delivery.targets`) need
 * from values the platform supplies, checked with the rules the deliveries use: the spool
 * sub-directory named by `spool.subdirFromMetadata` (unless `delivery.spool.subdir` is given)
 * must be present and a plain name; the owner's address under `email.toFromMetadata` (unless
 * `delivery.email.to` is given) may be absent (then the target's `to`, or no mail) but must
 * otherwise be an e-mail address. Empty when all is well.
 */
export function deliveryInputProblems(config: Config, rec: Pick<Recording, "backend" | "options" | "metadata">): DeliveryInputProblem[] {
  const b = config.backends[rec.backend];
  if (!b) return [];
  const problems: DeliveryInputProblem[] = [];
  const spool = b.delivery.spool;
  if (spool && wants(rec, "spool") && !rec.options.delivery?.spool?.subdir) {
    try {
      spoolSubdir(spool, rec.metadata);
    } catch (err) {
      const field = `metadata.${spool.subdirFromMetadata}`;
      problems.push({ field, message: `${errorMessage(err)}: backend ${rec.backend} delivers into a spool sub-directory named by ${field}` });
    }
  }
  const email = b.delivery.email;
  if (email && wants(rec, "email") && !rec.options.delivery?.email?.to) {
    const v = rec.metadata[email.toFromMetadata];
    if (v !== undefined && v !== null && !isEmailAddress(v)) {
      problems.push({ field: `metadata.${email.toFromMetadata}`, message: `metadata.${email.toFromMetadata} must be the owner's e-mail address (name@domain), got ${JSON.stringify(v)}; leave it out to send no mail` });
    }
  }
  return problems;
}

/**
 * {@link deliveryInputProblems}, as an error.
 * @throws MeetrecError `validation_failed` naming the first bad field (`details.field`; the
 * message lists all of them).
 */
export function checkDeliveryInputs(config: Config, rec: Pick<Recording, "backend" | "options" | "metadata">): void {
  const problems = deliveryInputProblems(config, rec);
  if (problems.length === 0) return;
  throw new MeetrecError("validation_failed", problems.map((p) => p.message).join("; "), { details: { field: problems[0].field, errors: problems } });
}

/** `seconds` for people: `3 days`, `2 h`, `1.5 s`. */
function humanSeconds(seconds: number): string {
  if (seconds >= 86400) return `${+(seconds / 86400).toFixed(1)} day${seconds === 86400 ? "" : "s"}`;
  if (seconds >= 3600) return `${+(seconds / 3600).toFixed(1)} h`;
  if (seconds >= 60) return `${+(seconds / 60).toFixed(1)} min`;
  return `${+seconds.toFixed(3)} s`;
}

/**
 * The Talk status callback a change calls for (protocol §2), or undefined: `started` when
 * capture begins; `stopped` when it stops (or a stop came before capture began); `failed`
 * when it fails before it was stopped. Talk waits in "Starting" until `started` or `failed`.
 */
export function talkCallback(rec: Recording, from: RecordingStatus): unknown {
  const t = rec.metadata.talk as TalkInfo | undefined;
  if (!t) return undefined;
  const stopped = () => ({ type: "stopped", stopped: { token: t.token, ...(t.stopActor ? { actor: t.stopActor } : {}) } });
  if (rec.status === "recording") return { type: "started", started: { token: t.token, status: t.status, actor: t.actor } };
  if (rec.status === "stopping") return stopped();
  if (rec.status === "aborted" && from !== "stopping") return stopped();
  if (rec.status === "failed" && ["queued", "starting", "recording"].includes(from)) return { type: "failed", failed: { token: t.token } };
  return undefined;
}

function webhookName(w: WebhookTarget, i: number): string {
  return `webhook:${w.name ?? i}`;
}

/** Webhook event type for a status change (Standard Webhooks `type`). */
export function eventType(to: RecordingStatus): string {
  if (to === "recording") return "recording.started";
  if (to === "completed") return "recording.completed";
  if (to === "failed" || to === "aborted") return "recording.failed";
  return "recording.updated";
}

/** Delay before attempt `n + 1` after `n` failed attempts, ms (capped, ±20 % jitter). */
export function backoffMs(failedAttempts: number, retry: Config["delivery"]["retry"], random = Math.random): number {
  const base = Math.min(retry.maxDelayMs, retry.initialDelayMs * retry.factor ** Math.max(0, failedAttempts - 1));
  return Math.round(base * (0.8 + 0.4 * random()));
}

/**
 * Queues the deliveries a status change calls for, in the store: webhooks on every change,
 * the Talk callbacks, the owner's mail once completed, and the file deliveries once the file is
 * ready. Runs wherever statuses change (the embedded server, every cluster worker and API
 * process); a {@link DeliveryService} sends what it queued.
 */
export class DeliveryPlanner {
  constructor(private readonly d: {
    config: Config; store: RecordingStore; log: Logger;
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
    const backend = this.d.config.backends[rec.backend];
    if (!backend) return;
    const type = eventType(rec.status);
    const event: WebhookEvent = { type, timestamp: new Date().toISOString(), data: this.d.describe(rec) };
    for (const [i, w] of (wants(rec, "webhooks") ? backend.delivery.webhooks : []).entries()) {
      if (w.events && !w.events.includes(type as never)) continue;
      await this.d.store.addDelivery({ recordingId: rec.id, target: webhookName(w, i), kind: "notify", payload: event });
    }
    // The owner's mail goes out once the recording is completed, so its link is final (a presigned
    // bucket URL when the file is in S3).
    if (rec.status === "completed" && rec.file && backend.delivery.email && wants(rec, "email") && emailRecipient(backend.delivery.email, rec)) {
      await this.d.store.addDelivery({ recordingId: rec.id, target: "email", kind: "notify" });
    }
    const callback = talkCallback(rec, from);
    if (callback) await this.d.store.addDelivery({ recordingId: rec.id, target: "talk:callback", kind: "notify", payload: callback });
    // File deliveries start when the file is ready: not again when a delivering recording
    // gave up (failed) or is delivered again by hand (failed → delivering re-uses its deliveries).
    if (rec.file && ((rec.status === "delivering" && from !== "failed") || (rec.status === "failed" && from !== "delivering"))) {
      for (const target of fileTargets(this.d.config, rec)) {
        await this.d.store.addDelivery({ recordingId: rec.id, target, kind: "file" });
      }
    }
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

  /** One pass: starts every due delivery that is first in line for its recording + target. */
  async tick(): Promise<void> {
    if (this.closed) return;
    const now = Date.now();
    const firstInLine = new Set<string>();
    for (const d of await this.deps.store.pendingDeliveries()) {
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
      const after = await store.recordAttempt(d.id, { ok: false, message, retryInMs: backoffMs(d.attempts + 1, config.delivery.retry), giveUpAfterMs: giveUpSeconds * 1000 }, {
        startedAt,
        givenUp: (x) => ({
          type: "delivery_given_up",
          message: `Gave up delivering to ${x.target} after ${humanSeconds(giveUpSeconds)} of failures (${x.attempts} attempts); last error: ${message}`,
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

  private async deliver(d: Delivery, rec: Recording): Promise<string> {
    const backend = this.deps.config.backends[rec.backend];
    if (!backend) throw new Error(`backend ${rec.backend} is no longer configured`);
    if (d.target.startsWith("webhook:")) {
      const name = d.target.slice("webhook:".length);
      const w = backend.delivery.webhooks.find((x, i) => (x.name ?? String(i)) === name);
      if (!w) throw new Error(`webhook ${name} is no longer configured for backend ${rec.backend}`);
      const event = d.payload as WebhookEvent;
      return sendWebhook(w, d.id, { ...event, data: this.deps.withBase(event.data) }, this.deps.config.delivery.attemptTimeoutMs, this.egress);
    }
    if (d.target === "talk:callback" || d.target === "talk:upload") {
      const t = rec.metadata.talk as TalkInfo | undefined;
      if (!backend.talk || !t) throw new Error(`recording ${rec.id} has no Talk backend or conversation`);
      const timeoutMs = this.deps.config.delivery.attemptTimeoutMs;
      // A configured Talk instance was named by the operator; under talk.allowAll the URL came with the request.
      const conn = { egress: this.egress, named: rec.backend !== ALLOW_ALL_BACKEND, skipVerify: backend.talk.skipVerify };
      if (d.target === "talk:callback") return sendTalkCallback(backend.talk.secret, t.backendUrl, d.payload, timeoutMs, conn);
      // Talk stores MP4 but not M4A: an audio-only recording goes to Talk as an audio-only MP4.
      const upload = await talkUploadFile(await this.deps.filePath(rec), this.deps.config.capture.ffmpegPath);
      try {
        return await uploadRecordingToTalk({
          secret: backend.talk.secret, backendUrl: t.backendUrl, token: t.token, owner: t.owner, file: upload.path,
          fileName: talkFileName(new Date(rec.startedAt ?? rec.createdAt), upload.ext),
          contentType: upload.contentType, timeoutMs: Math.max(timeoutMs, 600_000), conn,
        });
      } finally {
        await upload.cleanup();
      }
    }
    if (d.target === "s3") {
      const t = backend.delivery.s3;
      if (!t || !rec.file) throw new Error(`backend ${rec.backend} has no S3 target any more, or the recording has no file`);
      const loc = await uploadToS3(t, rec.id, await this.deps.filePath(rec), rec.file.name, rec.options.mode === "audio" ? "audio/mp4" : "video/mp4");
      await this.deps.store.mergeFile(rec.id, { s3: loc });
      return `uploaded to s3://${loc.bucket}/${loc.key}`;
    }
    if (d.target === "email") {
      const t = backend.delivery.email;
      const to = t && emailRecipient(t, rec);
      if (!t || !to || !rec.file) throw new Error(`backend ${rec.backend} has no e-mail target, or the recording has no owner address or file`);
      const link = (await this.deps.fileUrl?.(rec)) ?? (this.deps.describe(rec) as { file: { url: string } }).file.url;
      const title = typeof rec.metadata.title === "string" ? rec.metadata.title : undefined;
      return sendRecordingMail(t, to, { id: rec.id, link, durationSeconds: rec.file.durationSeconds, bytes: rec.file.bytes, title });
    }
    if (d.target === "spool") {
      if (!backend.delivery.spool) throw new Error(`backend ${rec.backend} has no spool directory any more`);
      // The attempt's message reaches API clients: it names the spool's sub-directory and file, never its path.
      const { dest, shown } = await deliverToSpool(backend.delivery.spool, rec, await this.deps.filePath(rec), this.deps.describe(rec), rec.options.delivery?.spool?.subdir);
      this.deps.log.info({ recordingId: rec.id, dest }, "spool: file written");
      return shown;
    }
    throw new Error(`unknown delivery target ${d.target}`);
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
    const n = await this.deps.store.redeliver(rec.id, rec.file ? fileTargets(this.deps.config, rec) : []);
    this.kick();
    return n;
  }

  /**
   * Queues the file deliveries of a `delivering` recording that has none (after a crash between
   * the two), and settles one whose deliveries all succeeded or one was given up.
   */
  async ensureFileDeliveries(rec: Recording): Promise<void> {
    const existing = new Set((await this.deps.store.deliveries(rec.id)).filter((d) => d.kind === "file").map((d) => d.target));
    for (const target of fileTargets(this.deps.config, rec)) {
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
