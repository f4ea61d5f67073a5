/**
 * The recording use cases behind the native API and the CLI: create (checked at the door),
 * read, stop, delete, change metadata, deliver again. Dispatch, storage and delivery are the
 * other parts' business; this only decides what a request means.
 */
import { randomUUID } from "node:crypto";
import { stepOrigins, type JoinStep } from "../capture/index.js";
import type { Config } from "../config/index.js";
import { deleteFromS3, presignedUrl, type DeliveryService, type DeliveryTargets } from "../delivery/index.js";
import type { Dispatcher } from "../dispatch/index.js";
import { RequestGuard, browserEgressFor, egressError } from "../egress/index.js";
import { speakersDocument, type RecordingFiles, type SpeakersFile } from "../media/index.js";
import { TERMINAL, type Delivery, type DeliveryAttempt, type Recording, type RecordingEvent, type RecordingStatus, type RecordingStore } from "../store/index.js";
import { MeetrecError } from "../util/errors.js";
import type { Logger } from "../util/log.js";
import { redactUrl } from "../util/redact.js";
import { MAX_METADATA_KEYS, checkMetadataEditable, checkMetadataKeys } from "./metadata.js";
import { resolveOptions, type RecordingRequest } from "./request.js";

/** What the use cases work with. */
export interface RecordingsDeps {
  config: Config;
  store: RecordingStore;
  dispatcher: Dispatcher;
  delivery: Pick<DeliveryService, "redeliver">;
  /** The delivery targets, for what they need from a request ({@link DeliveryTargets.checkInputs}). */
  targets: Pick<DeliveryTargets, "checkInputs">;
  files: RecordingFiles;
  log: Logger;
  /**
   * Cluster: a stop is stored too (`stopRequested`), so that whichever worker holds the
   * recording, now or after a failover, obeys it.
   */
  storeStops: boolean;
  /** The pause flag of `id` changed: a job running in this process follows it at once (else within its poll). */
  pauseChanged?(id: string): void;
}

/** See module doc. */
export class Recordings {
  constructor(private readonly d: RecordingsDeps) {}

  /**
   * Creates a recording for `backend` and queues it. What its delivery targets will need from
   * the metadata (spool sub-directory, owner's address) is checked now, so that a recording
   * that could never be delivered is not made.
   * @throws MeetrecError `validation_failed` | `origin_not_allowed` | `egress_refused` (nothing is created).
   */
  async create(backend: string, req: RecordingRequest): Promise<Recording> {
    const { config, store, dispatcher, log } = this.d;
    const options = resolveOptions(config, backend, req);
    const metadata = req.metadata ?? {};
    checkMetadataKeys(metadata);
    this.d.targets.checkInputs({ backend, options, metadata });
    // The egress policy at the door (the browser enforces it again on every request it makes).
    const guard = new RequestGuard(browserEgressFor(config, backend));
    for (const url of [options.url, ...stepOrigins(options.join as JoinStep[])]) {
      const refusal = await guard.navigationRefusal(url);
      if (refusal) throw egressError(redactUrl(url), refusal);
    }
    const rec = await store.create({ id: randomUUID(), backend, options, metadata });
    log.info({ recordingId: rec.id, backend, origin: new URL(options.url).origin, mode: options.mode, browser: options.browser }, "recording created");
    await dispatcher.submit(rec.id, options);
    return rec;
  }

  /** @throws MeetrecError `not_found` (also for another backend's recording). */
  async get(id: string, backend?: string): Promise<Recording> {
    const rec = await this.d.store.get(id);
    if (!rec || (backend && rec.backend !== backend)) throw new MeetrecError("not_found", `No recording ${id}`);
    return rec;
  }

  /**
   * Who spoke when in `id`'s finished file (the speakers sidecar, media/speakers.ts).
   * @throws MeetrecError `not_found` (no such recording, or nobody was heard speaking), `not_ready` (no file yet).
   */
  async speakers(id: string, backend?: string): Promise<SpeakersFile> {
    const rec = await this.get(id, backend);
    if (!rec.file) throw new MeetrecError("not_ready", "The recording has no file yet; who spoke is known once it is finalized");
    const doc = speakersDocument(rec.file.name, await this.d.store.speakerIntervals(id), rec.file.timeline);
    if (!doc) throw new MeetrecError("not_found", `Nobody was heard speaking in recording ${id}`);
    return doc;
  }

  /** Recordings, newest first, optionally of one status and one backend (at most `limit`, default 100). */
  list(opts: { status?: RecordingStatus; backend?: string; limit?: number }): Promise<Recording[]> {
    return this.d.store.list(opts);
  }

  /** A recording's timeline, oldest first. */
  events(id: string): Promise<RecordingEvent[]> {
    return this.d.store.events(id);
  }

  /**
   * Asks a recording to stop. Queued → `aborted` at once; live → stops in the background.
   * Already ended → returned unchanged. @throws MeetrecError `not_found`.
   */
  async stop(id: string, backend?: string): Promise<Recording> {
    const { store, dispatcher } = this.d;
    const rec = await this.get(id, backend);
    if (TERMINAL.includes(rec.status)) return rec;
    if (this.d.storeStops) await store.requestStop(id, "stopped");
    const outcome = await dispatcher.stop(id, "stopped");
    if (outcome === "dequeued" || (outcome === "unknown" && rec.status === "queued")) {
      return store.transition(id, "aborted", { reason: "stopped_while_queued", message: "Stopped before it started", endReason: "stopped" });
    }
    return (await store.get(id))!;
  }

  /**
   * Pauses capturing of `id` (`paused` true) or captures again: whoever records it follows
   * within a second (recorder/job.ts) — the encoder closes its open segment and stops; the
   * browser stays in the meeting; capturing again starts a new period. Asking for the state it
   * is in changes nothing. @throws MeetrecError `not_found`, `not_ready` when it is not `recording`.
   */
  async setPaused(id: string, paused: boolean, backend?: string): Promise<Recording> {
    const rec = await this.get(id, backend);
    const notRecording = (status: string) => new MeetrecError("not_ready", `Only a recording that is recording can be ${paused ? "paused" : "resumed"}; this one is ${status}${status === "starting" || status === "queued" ? " (try again once it records)" : ""}`);
    if (rec.status !== "recording") throw notRecording(rec.status);
    if (rec.paused === paused) return rec;
    const now = await this.d.store.setPaused(id, paused);
    if (!now) throw notRecording((await this.get(id, backend)).status);
    this.d.log.info({ recordingId: id, paused }, paused ? "pause requested" : "resume requested");
    this.d.pauseChanged?.(id);
    return now;
  }

  /**
   * Stops `id` if live, waits for it to end, then removes its files (local, bucket, the S3
   * delivery's copy) and its row. @throws MeetrecError `not_found`; the SDK's error when a
   * bucket cannot be reached (then nothing is deleted).
   */
  async delete(id: string, backend?: string): Promise<void> {
    const { store, dispatcher, config, files, log } = this.d;
    const rec = await this.get(id, backend);
    if (!TERMINAL.includes(rec.status)) {
      if (this.d.storeStops) await store.requestStop(id, "deleted");
      if (await dispatcher.stop(id, "deleted") === "dequeued" || rec.status === "queued") {
        await store.transition(id, "aborted", { reason: "deleted", endReason: "deleted" }).catch(() => undefined);
      }
      await dispatcher.settled(id);
    }
    const now = (await store.get(id)) ?? rec;
    const s3 = config.backends[rec.backend]?.delivery.s3;
    if (s3 && now.file?.s3) await deleteFromS3(s3, now.file.s3, now.file); // throws (and deletes nothing) when the bucket cannot be reached
    await files.remove(now);
    await store.delete(id);
    log.info({ recordingId: id }, "recording deleted");
  }

  /**
   * Changes a recording's metadata (merge: a key set to `null` is removed) while its delivery
   * has not ended, checked with the rules of {@link Recordings.create}; the deliveries use it from
   * their next attempt on (`redeliver` makes that now). Returns the recording as it is now.
   * @throws MeetrecError `not_found`; `conflict` when its delivery has ended (completed,
   * aborted, failed without a file); `validation_failed` (nothing is changed).
   */
  async patchMetadata(id: string, backend: string | undefined, patch: Record<string, string | number | boolean | null>): Promise<Recording> {
    await this.get(id, backend);
    checkMetadataKeys(patch);
    const rec = await this.d.store.patchMetadata(id, patch, (cur, next) => {
      checkMetadataEditable(cur);
      if (Object.keys(next).length > MAX_METADATA_KEYS) {
        throw new MeetrecError("validation_failed", `The metadata would have ${Object.keys(next).length} keys; at most ${MAX_METADATA_KEYS} are allowed (remove keys by setting them to null)`, { details: { field: "metadata" } });
      }
      this.d.targets.checkInputs({ ...cur, metadata: next });
    });
    this.d.log.info({ recordingId: id, keys: Object.keys(patch) }, "metadata changed");
    return rec;
  }

  /** The deliveries of a recording and the attempts made (with `lastAttempts`: only the last that many of each delivery). */
  async deliveries(id: string, lastAttempts?: number): Promise<{ deliveries: Delivery[]; attempts: DeliveryAttempt[] }> {
    return { deliveries: await this.d.store.deliveries(id), attempts: await this.d.store.deliveryAttempts(id, lastAttempts) };
  }

  /**
   * Delivers a recording again by hand ({@link DeliveryService.redeliver}); a recording whose
   * delivery was given up goes back to `delivering`. Returns how many deliveries are due.
   * @throws MeetrecError `not_ready` when it has nothing to deliver yet (no file and no
   * delivery); `conflict` while an earlier redelivery has not been attempted yet.
   */
  async redeliver(id: string, backend?: string): Promise<number> {
    const rec = await this.get(id, backend);
    const n = await this.d.delivery.redeliver(rec);
    if (n === 0) throw new MeetrecError("not_ready", `Recording ${id} has nothing to deliver (status ${rec.status}; no file target or no file yet)`);
    return n;
  }

  /** Download URL of the file: a presigned bucket URL once the S3 delivery succeeded, else undefined (the API serves it). */
  async fileUrl(rec: Recording): Promise<string | undefined> {
    const s3 = this.d.config.backends[rec.backend]?.delivery.s3;
    if (!s3 || !rec.file?.s3) return undefined;
    return presignedUrl(s3, rec.file.s3, `${rec.id}-${rec.file.name}`);
  }
}
