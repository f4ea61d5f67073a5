/**
 * Recovery: taking up what a killed or crashed meetrec left — one set of rules for the
 * embedded server (`serve`), a cluster worker, and `meetrec recover` in both modes.
 *
 * - A recording that was live (`starting`, `recording`) resumes in a new period when asked to
 *   and at least one segment duration of its limit is left; otherwise what was captured is
 *   finalized (`limit_reached`, or `stopped`). One that was ending (`stopping`, `finalizing`)
 *   is finalized. A `delivering` one goes back to the delivery loop; a `queued` one is
 *   dispatched again after the resumed ones.
 * - Finalizing a left recording reads its local media and, when it has a segment bucket, the
 *   bucket's manifest (another machine may have recorded periods of it).
 * - Media the store does not know (a lost database) is finalized in place: local media
 *   directories in the embedded mode, the bucket's manifests in a cluster.
 * Nothing in a data directory or bucket is deleted but the segments a finished file replaces.
 */
import { existsSync } from "node:fs";
import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Config } from "../config/index.js";
import {
  MANIFEST, RecordingBucket, RecordingMedia, captureOrigin, finalize, isFinalFileName, manifestSegmentCount, mediaRoots, recordingDir,
  recordingsDir, recordingsInBucket, recoverRoot,
} from "../media/index.js";
import type { EndReason, Recording, RecordingStatus, RecordingStore } from "../store/index.js";
import { errorMessage } from "../util/errors.js";
import type { Logger } from "../util/log.js";
import { finalizeRecording } from "./job.js";
import type { RecordingPlan } from "./plan.js";

/** What recovery did with one recording (or media the store did not know). */
export interface RecoveryAction {
  id: string;
  action: "resumed" | "finalized" | "queued" | "delivering" | "orphan_finalized" | "orphan_failed";
  status?: RecordingStatus;
  /** For orphans: the media directory (or bucket prefix), and the file made from it. */
  dir?: string;
  file?: string;
  error?: string;
}

/** What recovery needs from the process around it. */
export interface RecoveryDeps {
  config: Config;
  store: RecordingStore;
  log: Logger;
  /** A recording's plan (where its media is, its file targets). */
  plan(rec: Recording): RecordingPlan;
}

/** See module doc. */
export class Recovery {
  constructor(private readonly d: RecoveryDeps) {}

  /**
   * Finalizes what `rec` captured — its local media plus what its segment bucket holds — and
   * ends it; a live recording is moved to `stopping` first, a `queued` one is aborted.
   * `endReason`: given, else the stop that was asked for, else the recording's own, else `stopped`.
   */
  async finalizeLeft(rec: Recording, endReason?: EndReason): Promise<Recording> {
    const { store, log } = this.d;
    const plan = this.d.plan(rec);
    const media = await RecordingMedia.open(plan.place.root, rec.id, { mode: plan.mode, segmentSeconds: plan.segmentSeconds, audioCodec: plan.audioCodec });
    const remote = plan.place.bucket ? await new RecordingBucket(plan.place.bucket, rec.id).getManifest() : undefined;
    if (remote) await media.adopt(remote);
    const reason = endReason ?? ((await store.stopRequested(rec.id)) ?? rec.endReason ?? "stopped") as EndReason;
    let cur = rec;
    if (cur.status === "queued") return store.transition(rec.id, "aborted", { reason: "recovered", message: "Never started", endReason: "stopped" });
    if (cur.status === "starting" || cur.status === "recording") cur = await store.transition(rec.id, "stopping", { reason: "interrupted" });
    return finalizeRecording({ store, log: log.child({ recordingId: rec.id }) }, plan, cur, media, { endReason: reason, abortWhenEmpty: true });
  }

  /**
   * The embedded server's (and `meetrec recover`'s) recovery of its data directories, see the
   * module doc; `mode` `resume` rejoins live recordings (`serve`), `finalize` finalizes them.
   * `resume(rec)` dispatches a recording again; `delivering(rec)` hands one to the delivery loop.
   */
  async embedded(mode: "resume" | "finalize", hooks: { resume(rec: Recording): void | Promise<void>; delivering(rec: Recording): Promise<void> }): Promise<RecoveryAction[]> {
    const { config, store } = this.d;
    const done: RecoveryAction[] = [];
    const queued: Recording[] = [];
    for (const rec of await store.listUnfinished()) {
      const log = this.d.log.child({ recordingId: rec.id });
      if (rec.status === "queued") {
        queued.push(rec);
        done.push({ id: rec.id, action: "queued", status: rec.status });
        continue;
      }
      if (rec.status === "delivering") {
        await hooks.delivering(rec);
        done.push({ id: rec.id, action: "delivering", status: rec.status });
        continue;
      }
      const plan = this.d.plan(rec);
      const media = await RecordingMedia.open(plan.place.root, rec.id, { mode: plan.mode, segmentSeconds: plan.segmentSeconds, audioCodec: plan.audioCodec });
      const origin = captureOrigin(media.current);
      const leftMs = origin === undefined ? Infinity : origin + plan.maxDurationSeconds * 1000 - Date.now();
      const live = rec.status === "starting" || rec.status === "recording";
      const segmentMs = config.capture.segmentSeconds * 1000;
      if (live && mode === "resume" && leftMs >= segmentMs) {
        log.warn({ status: rec.status, leftSeconds: Math.round(leftMs / 1000) }, "recording was interrupted; resuming it");
        await store.addEvent(rec.id, { type: "interrupted", message: "meetrec stopped during the recording; rejoining the meeting" });
        await hooks.resume(rec);
        done.push({ id: rec.id, action: "resumed", status: rec.status });
        continue;
      }
      const endReason: EndReason = live ? (leftMs < segmentMs ? "limit_reached" : "stopped") : rec.endReason ?? "stopped";
      log.warn({ status: rec.status, endReason, mode }, "recording was interrupted; finalizing what was captured");
      await store.addEvent(rec.id, {
        type: "interrupted",
        message: mode === "finalize" ? "Finalized by meetrec recover from the media captured" : "meetrec stopped while the recording was ending; finalizing the media captured",
      });
      const final = await this.finalizeLeft(rec, endReason);
      done.push({ id: rec.id, action: "finalized", status: final.status });
    }
    done.push(...await this.localOrphans());
    for (const rec of queued) await hooks.resume(rec);
    return done;
  }

  /**
   * A cluster's recovery (`meetrec recover` with cluster settings): recordings the store has as
   * unfinished that no worker carries — their job is gone or dead, or no worker is alive — are
   * finalized from the bucket, or with `resume` queued again; a `queued` one whose job waits for
   * a worker is left waiting; `delivering` ones are the API's. Then the bucket's orphans.
   * `job(id)`: the recording's job in the queue; `requeue(rec)` queues it anew.
   */
  async cluster(o: {
    resume: boolean; workersAlive: boolean;
    job(id: string): Promise<{ live: boolean; remove(): Promise<void> }>;
    requeue(rec: Recording): Promise<void>;
  }): Promise<RecoveryAction[]> {
    const actions: RecoveryAction[] = [];
    for (const rec of await this.d.store.listUnfinished()) {
      if (rec.status === "delivering") continue; // the API's delivery loop has it
      const job = await o.job(rec.id);
      if (job.live && (o.workersAlive || rec.status === "queued")) continue; // a worker has it or will
      await job.remove(); // a dead worker's job: no one else takes it up now
      if (o.resume && ["queued", "starting", "recording"].includes(rec.status)) {
        await o.requeue(rec);
        actions.push({ id: rec.id, action: "queued", status: rec.status });
        continue;
      }
      const final = await this.finalizeLeft(rec);
      actions.push({ id: rec.id, action: "finalized", status: final.status });
    }
    actions.push(...await this.bucketOrphans());
    return actions;
  }

  /** Local media directories with a manifest but no recording in the store: finalized in place. */
  async localOrphans(): Promise<RecoveryAction[]> {
    const { config, store } = this.d;
    const out: RecoveryAction[] = [];
    for (const root of mediaRoots(config)) {
      let ids: string[];
      try {
        ids = await readdir(recordingsDir(root));
      } catch {
        continue;
      }
      for (const id of ids) {
        const dir = recordingDir(root, id);
        if (!existsSync(join(dir, MANIFEST)) || await store.get(id)) continue;
        const log = this.d.log.child({ recordingId: id });
        try {
          const media = await RecordingMedia.open(root, id, { mode: "video", segmentSeconds: config.capture.segmentSeconds });
          if (manifestSegmentCount(media.current) === 0 || (await readdir(dir)).some(isFinalFileName)) continue;
          const file = await finalize(media.dir, media.current, { ffmpegPath: config.capture.ffmpegPath, ffprobePath: config.capture.ffprobePath });
          log.warn({ dir, file: file.path }, "media without a recording in the store finalized in place");
          out.push({ id, action: "orphan_finalized", dir, file: file.path });
        } catch (err) {
          log.error({ dir, err: errorMessage(err) }, "orphaned media could not be finalized");
          out.push({ id, action: "orphan_failed", dir, error: errorMessage(err) });
        }
      }
    }
    return out;
  }

  /** Manifests in the segment bucket with no recording in the store: finalized into the bucket. */
  async bucketOrphans(): Promise<RecoveryAction[]> {
    const { config, store } = this.d;
    const cfg = config.segments.s3;
    if (!cfg) return [];
    const out: RecoveryAction[] = [];
    const scratch = recoverRoot(config);
    for (const id of await recordingsInBucket(cfg)) {
      if (await store.get(id)) continue;
      const bucket = new RecordingBucket(cfg, id);
      try {
        const media = await RecordingMedia.open(scratch, id, { mode: "video", segmentSeconds: config.capture.segmentSeconds });
        const remote = await bucket.getManifest();
        if (!remote || remote.periods.every((p) => p.segments.length === 0)) continue;
        await media.adopt(remote);
        const file = await finalize(media.dir, media.current, { ffmpegPath: config.capture.ffmpegPath, ffprobePath: config.capture.ffprobePath, remote: (rel) => bucket.open(rel) });
        const loc = await bucket.putFinal(file.name, file.path);
        await bucket.deleteSegments();
        out.push({ id, action: "orphan_finalized", dir: `s3://${loc.bucket}/${bucket.key("")}`, file: `s3://${loc.bucket}/${loc.key}` });
      } catch (err) {
        out.push({ id, action: "orphan_failed", dir: `s3://${cfg.bucket}/${bucket.key("")}`, error: errorMessage(err) });
      } finally {
        await rm(recordingDir(scratch, id), { recursive: true, force: true });
      }
    }
    return out;
  }
}
