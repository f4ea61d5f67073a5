/**
 * Runs one recording from `queued` to a terminal status on this machine: capture session →
 * durable segments → stop (API, max duration, failure) → finalize. Every status change goes
 * through the store (with its event); nothing is left `starting` or `recording` when this
 * function returns, whatever was thrown.
 *
 * Over 300 lines: one recording's whole lifecycle (start, lease, limit, disk guard, hand-over,
 * finalize) in one place, so every exit path is visible beside the others.
 */
import { readFile, rm, rmdir, statfs } from "node:fs/promises";
import { dirname, join } from "node:path";
import { CaptureSession, type MeetingState, type PulseServer, type SessionHooks, type SessionOptions } from "../capture/index.js";
import {
  RecordingBucket, RecordingMedia, SegmentMirror, TrackChunks, trackAlignMs, captureOrigin, fileTimeline, finalize, finalizeTracks, mediaStartSeconds, manifestBytes,
  manifestDurationMs, manifestFrames, manifestSegmentCount, periodGapMs, removeTrackChunks, type FinalFile,
} from "../media/index.js";
import type { EndReason, EventOf, FrameCounts, Recording, RecordingFile, RecordingStore, SessionPids } from "../store/index.js";
import { MeetrecError, errorMessage, publicErrorMessage } from "../util/errors.js";
import type { Logger } from "../util/log.js";
import type { RecordingPlan } from "./plan.js";
import { AutoStop, type AutoStopReason } from "./auto-stop.js";

/** How often a running job reads the stored pause flag, ms (a cluster API stores it for whichever worker holds the recording). */
const PAUSE_POLL_MS = 1000;

/** What a job needs from the process around it. */
export interface JobDeps {
  store: RecordingStore;
  /** The machine's PulseAudio daemon (started on first use). */
  pulse(): Promise<PulseServer>;
  log: Logger;
  /** Told what the run does (metrics, tests). */
  observer?: JobObserver;
}

/** What a running job reports, as it happens. Every member is optional; none may throw. */
export interface JobObserver {
  /** A period began; `gapMs` is the media lost since the previous one (0 for the first). */
  period?(e: { index: number; reason: string; gapMs: number }): void;
  /** One media segment became durable after `seconds`, in `store` (`local` disk or the `s3` bucket). */
  segmentStored?(e: { seconds: number; store: "local" | "s3" }): void;
  /** The capture session was created (tests and benchmarks read its process ids). */
  session?(session: CaptureSession): void;
  /** A video segment became durable with these encoder frame counts. */
  frames?(f: FrameCounts): void;
}

/** Share of a segment's frames (encoded + dropped) duplicated or dropped above which it goes on the timeline (`frames_degraded`). */
export const DEGRADED_FRAMES_SHARE = 0.05;
/** Least time between two `frames_degraded` events of one job, ms. */
const DEGRADED_EVENT_EVERY_MS = 30_000;

/** Free bytes on the filesystem holding `path` (for unprivileged users). */
export async function freeBytes(path: string): Promise<number> {
  const st = await statfs(path);
  return st.bavail * st.bsize;
}

/** Why a job is asked to stop: becomes the `endReason`. */
export type StopReason = Extract<EndReason, "stopped" | "deleted" | "meeting_ended">;

/** Describes a probed file for the API: `video h264 1280x720 30fps`. */
export function describeStreams(f: FinalFile): string[] {
  return f.probe.streams.map((s) => s.type === "video"
    ? `video ${s.codec} ${s.width}x${s.height} ${Math.round(s.fps ?? 0)}fps`
    : `${s.type} ${s.codec}${s.sampleRate ? ` ${s.sampleRate}Hz` : ""}${s.channels ? ` ${s.channels}ch` : ""}`);
}

function toRecordingFile(f: FinalFile, timeline: RecordingFile["timeline"], stored?: RecordingFile["stored"], tracks?: RecordingFile["tracks"]): RecordingFile {
  return {
    name: f.name, bytes: f.bytes, durationSeconds: Math.round(f.durationSeconds * 1000) / 1000, startedAt: new Date(f.startedAtMs).toISOString(), streams: describeStreams(f), timeline,
    ...(stored ? { stored } : {}), ...(tracks?.length ? { tracks } : {}),
  };
}

/**
 * Makes the per-participant track files beside the finished file `file` (media/tracks.ts) from
 * the chunks in `media.dir`, each on the timeline's `tracks_finalized` / `track_problem`; a
 * track that cannot be made is skipped, never the recording. Cluster (`bucket`): each is
 * uploaded beside the final file and its local copy removed.
 */
async function makeTracks(deps: Pick<JobDeps, "store" | "log">, plan: RecordingPlan, rec: Recording, dir: string, file: FinalFile, timeline: RecordingFile["timeline"], bucket?: RecordingBucket): Promise<RecordingFile["tracks"]> {
  const { store, log } = deps;
  const made = await finalizeTracks(dir, file.name, timeline, { ffmpegPath: plan.capture.ffmpegPath, ffprobePath: plan.capture.ffprobePath }, trackAlignMs(plan.browser, plan.capture.audioDelayMs)).catch((err: unknown) => {
    log.warn({ err: errorMessage(err) }, "the per-participant tracks could not be read");
    return { tracks: [], skipped: [{ n: 0, why: `the track index is unreadable (${publicErrorMessage(err)})` }] };
  });
  for (const s of made.skipped) {
    await store.addEvent(rec.id, { type: "track_problem", message: s.n ? `Track ${s.n} could not be made into a file: ${s.why}` : s.why, data: s.n ? { n: s.n } : {} });
  }
  if (made.tracks.length === 0 && made.skipped.length === 0) return undefined;
  if (plan.uploadFinal && bucket) {
    for (const t of made.tracks) {
      const path = join(dir, t.name);
      await bucket.putFinal(t.name, path).catch((err) => {
        throw new MeetrecError("store_failed", `A track file could not be uploaded to bucket ${bucket.cfg.bucket} (${errorMessage(err)}); the segments stay in the bucket — run meetrec recover when it is reachable`, { cause: err });
      });
      await rm(path, { force: true });
    }
  }
  await store.addEvent(rec.id, { type: "tracks_finalized", message: `${made.tracks.length} per-participant track file(s) made beside the file${made.skipped.length ? `, ${made.skipped.length} skipped` : ""}`, data: { count: made.tracks.length, skipped: made.skipped.length } });
  return made.tracks;
}

/**
 * What a stitched file lacks of what a recording of `mode` must hold — video mode: a video
 * stream; audio mode: an audio stream; both: some duration — or undefined. (A video recording
 * of a page that never played a sound has no audio stream: that is what was captured.)
 */
export function missingStreams(mode: "video" | "audio", f: Pick<FinalFile, "probe" | "durationSeconds">): string | undefined {
  if (!f.probe.streams.some((s) => s.type === mode)) return mode;
  if (!(f.durationSeconds > 0)) return "media (zero duration)";
  return undefined;
}

/**
 * Finalizes whatever media `rec` has (`media`, laid out as `plan` says) and moves it from
 * `finalizing` to its end status: `delivering` when the plan has file targets, else
 * `completed`; `failed` with the file when `end.error`. No media → `failed`
 * (`finalize_failed`), or `aborted` when `abortWhenEmpty`. Never throws for a failed stitch
 * (the recording ends `failed`, its segments kept).
 */
export async function finalizeRecording(
  deps: Pick<JobDeps, "store" | "log">, plan: RecordingPlan, rec: Recording, media: RecordingMedia,
  end: { endReason: EndReason; error?: MeetrecError; abortWhenEmpty: boolean },
): Promise<Recording> {
  const { store, log } = deps;
  const capture = plan.capture;
  const manifest = media.current;
  if (manifestSegmentCount(manifest) === 0) {
    if (end.abortWhenEmpty && !end.error) {
      return store.transition(rec.id, "aborted", { reason: "nothing_captured", message: "Stopped before anything was captured", endReason: end.endReason });
    }
    const error = end.error ?? new MeetrecError("finalize_failed", "No media was captured");
    return store.transition(rec.id, "failed", { reason: error.code, error: { code: error.code, message: error.message }, endReason: "failed" });
  }
  if (rec.status !== "finalizing") rec = await store.transition(rec.id, "finalizing", { reason: "stitching" });
  const bucket = plan.place.bucket ? new RecordingBucket(plan.place.bucket, rec.id) : undefined;
  try {
    const file = await finalize(media.dir, manifest, { ffmpegPath: capture.ffmpegPath, ffprobePath: capture.ffprobePath, remote: bucket && ((rel) => bucket.open(rel)) });
    log.info({ file: file.path, bytes: file.bytes, durationSeconds: file.durationSeconds }, "recording finalized");
    if (plan.mode === "video" && plan.audio && !file.probe.streams.some((s) => s.type === "audio")) {
      await store.addEvent(rec.id, { type: "no_audio", message: "The file has no sound track: the page played no sound while it was recorded" });
    }
    const missing = missingStreams(plan.mode, file);
    if (missing) {
      // Never delivered as a recording: the segments stay for inspection (meetrec recover).
      await rm(file.path, { force: true });
      throw new MeetrecError("no_media", `The capture produced no ${missing} (${describeStreams(file).join(", ") || "no streams"}, ${file.durationSeconds.toFixed(1)} s); the segments were kept`);
    }
    const timeline = fileTimeline(manifest);
    const tracks = await makeTracks(deps, plan, rec, media.dir, file, timeline, bucket);
    let stored: RecordingFile["stored"];
    if (plan.uploadFinal && bucket) {
      stored = await bucket.putFinal(file.name, file.path).catch((err) => {
        throw new MeetrecError("store_failed", `The final file could not be uploaded to bucket ${bucket.cfg.bucket} (${errorMessage(err)}); the segments stay in the bucket — run meetrec recover when it is reachable`, { cause: err });
      });
      await rm(file.path, { force: true });
    }
    if (!plan.keepSegments) {
      await media.removeSegments();
      await removeTrackChunks(media.dir);
      // The file is whole and checked: the bucket's segments are no longer needed.
      if (bucket) await bucket.deleteSegments().catch((err) => log.warn({ err: errorMessage(err) }, "segments left in the bucket (delete failed)"));
    }
    if (end.error) {
      return store.transition(rec.id, "failed", { reason: end.error.code, error: { code: end.error.code, message: end.error.message }, endReason: "failed", file: toRecordingFile(file, timeline, stored, tracks) });
    }
    // With file targets (spool, …) the recording is `delivering` until each has the file.
    const to = plan.fileTargets.length > 0 ? "delivering" : "completed";
    return store.transition(rec.id, to, { reason: end.endReason, endReason: end.endReason, file: toRecordingFile(file, timeline, stored, tracks) });
  } catch (err) {
    const e = err instanceof MeetrecError ? err : new MeetrecError("finalize_failed", errorMessage(err));
    log.error({ err: e.message }, "finalize failed");
    return store.transition(rec.id, "failed", { reason: e.code, error: { code: e.code, message: e.message }, endReason: "failed" });
  }
}

/** How a job runs beyond its recording. */
export interface JobOptions {
  /** The recording was live when its previous run ended: rejoin and continue in a new period. */
  resume?: boolean;
  /**
   * Cluster: the lease under which this worker holds the recording. Checked every `intervalMs`:
   * once another worker holds it, this run leaves at once without touching the status
   * (`fenced`); a stop stored in the database is obeyed like {@link RecordingJob.stop}.
   * `epoch` names the manifest this run writes to the segment bucket (`manifests/{epoch}.json`).
   */
  lease?: { epoch: number; holds(): Promise<boolean>; stopRequested(): Promise<string | null>; intervalMs: number };
  /** How long to wait at the stop for segments still queued for the bucket, ms (`segments.flushTimeoutMs`; default 30 000). */
  flushTimeoutMs?: number;
  /**
   * Makes the run's capture session (default: a new {@link CaptureSession}); OpenVidu's quick
   * start hands over a session opened before the recording existed ({@link CaptureSession.bind}).
   */
  session?: SessionFactory;
}

/** Makes the capture session of a run from its options and hooks. */
export type SessionFactory = (o: SessionOptions, hooks: SessionHooks) => CaptureSession;

/** How a run ended when it did not end the recording. */
export type Departure = "handed_over" | "fenced";

/** One recording's run. Create it, call {@link RecordingJob.run}; {@link RecordingJob.stop} from anywhere. */
export class RecordingJob {
  private readonly abort = new AbortController();
  private stopReason: StopReason | "limit_reached" | "disk_full" | AutoStopReason | undefined;
  private leaving?: Departure;
  private failure?: MeetrecError;
  private wake?: () => void;
  private limitTimer?: NodeJS.Timeout;
  private readonly log: Logger;
  private session?: CaptureSession;
  private mirror?: SegmentMirror;

  /**
   * `resume`: the recording was live when its previous run ended (restart, failover): it rejoins
   * and continues in a new period, its duration limit still counted from its first period.
   */
  constructor(private rec: Recording, readonly plan: RecordingPlan, private readonly deps: JobDeps, private readonly opts: JobOptions = {}) {
    this.log = deps.log.child({ recordingId: rec.id });
  }

  get id(): string {
    return this.rec.id;
  }

  /** When (wall clock, ms) a segment of this run last had more than 5 % of its frames repeated or dropped; 0 when none did. */
  get degradedAt(): number {
    return this.degradedSegmentAt;
  }

  /** The video encoder's frame counts over the recording's durable segments (every period), once there are any. */
  get frames(): FrameCounts | undefined {
    return this.framesSoFar;
  }

  /**
   * The capture processes of this run while it captures (display, sink pin, browser, encoder),
   * undefined while it joins, is paused or has no session — what {@link RecorderNode} measures.
   */
  get capturing(): SessionPids | undefined {
    const s = this.session;
    if (!s || s.paused || !s.pids.encoder) return undefined;
    return s.pids;
  }

  /** The meeting as this run's media watcher sees it now (undefined before the session exists). */
  get meeting(): MeetingState | undefined {
    return this.session?.watcher.state;
  }

  /** Media segments closed by the encoder and not yet durable (stored locally, or uploaded to the bucket). */
  get pendingSegments(): number {
    return (this.session?.pendingSegments ?? 0) + (this.mirror?.backlog ?? 0);
  }

  /** Asks the recording to end (idempotent; the first reason wins). */
  stop(reason: StopReason = "stopped"): void {
    this.stopReason ??= reason;
    this.abort.abort();
    this.wake?.();
  }

  /**
   * Cluster SIGTERM: leave the recording for another worker — the open segment is closed and
   * stored, queued segments are uploaded, the status stays live. See {@link RecordingJob.departure}.
   */
  handOver(): void {
    this.leaving ??= "handed_over";
    this.abort.abort();
    this.wake?.();
  }

  /** Why the last run left without ending the recording, if it did. */
  get departure(): Departure | undefined {
    return this.leaving;
  }

  /** The run has begun recording (auto-stop and the page's end count only from then). */
  private recording = false;

  /** The meeting is over (auto-stop or the page left it): the recording stops with `reason` once, its event on the timeline. */
  private meetingOver(reason: AutoStopReason | "meeting_ended", event: EventOf<"meeting_empty" | "meeting_idle" | "meeting_ended">): void {
    if (!this.recording || this.stopReason || this.leaving) return;
    this.log.info({ reason }, "the meeting is over; stopping");
    void this.deps.store.addEvent(this.rec.id, event).catch(() => undefined);
    this.stopReason = reason;
    this.wake?.();
  }

  private fail(err: MeetrecError): void {
    this.failure ??= err;
    this.abort.abort();
    this.wake?.();
  }

  /** Ends the recording because its disk is (about to be) full; what exists is finalized. */
  private diskFull(freeBytes: number, neededBytes: number): void {
    if (this.stopReason) return;
    this.log.warn({ freeBytes, neededBytes }, "disk guard: stopping the recording");
    void this.deps.store.addEvent(this.rec.id, {
      type: "disk_full",
      message: `Only ${Math.round(freeBytes / 1048576)} MiB free on the data filesystem (${Math.round(neededBytes / 1048576)} MiB needed to finalize and keep the reserve); stopping`,
      data: { freeBytes, neededBytes },
    }).catch(() => undefined);
    this.stopReason = "disk_full";
    this.wake?.();
  }

  /** Polls the cluster lease: fenced → leave at once; a stored stop → stop. */
  private watchLease(): NodeJS.Timeout | undefined {
    const lease = this.opts.lease;
    if (!lease) return undefined;
    let busy = false;
    return setInterval(() => {
      if (busy || this.leaving) return;
      busy = true;
      void (async () => {
        if (!(await lease.holds())) {
          this.log.warn("another worker holds this recording now; leaving it");
          this.leaving = "fenced";
          this.abort.abort();
          this.wake?.();
          return;
        }
        const stop = await lease.stopRequested();
        if (stop && !this.stopReason) this.stop(stop === "deleted" ? "deleted" : "stopped");
      })().catch(() => undefined).finally(() => { busy = false; });
    }, lease.intervalMs);
  }

  /**
   * Leaves the recording live for another worker. Handed over: the encoder closes its segment,
   * which is stored and uploaded with the rest (bounded wait). Fenced: everything is killed at
   * once — the recording continues elsewhere, in a newer period.
   */
  private async leave(session: CaptureSession, mirror: SegmentMirror | undefined): Promise<Recording> {
    if (this.leaving === "handed_over") {
      await session.stop().catch(() => undefined);
      if (mirror && !(await mirror.flush(10_000))) this.log.warn({ backlog: mirror.backlog }, "handing over with segments not yet uploaded");
      await this.deps.store.addEvent(this.rec.id, { type: "handed_over", message: "The worker is shutting down; another worker continues the recording", data: {} });
    } else {
      await session.close();
    }
    this.log.info({ departure: this.leaving }, "left the recording to another worker");
    return this.rec;
  }

  /** The session whose capturing follows the stored pause flag, while recording. */
  private pauseTarget?: CaptureSession;
  /** A pause check is running (one at a time). */
  private pauseBusy = false;

  /**
   * Makes capturing follow the stored pause flag (`POST …/pause`, `…/resume`): pauses or
   * captures again, each on the timeline. Runs every {@link PAUSE_POLL_MS} (a cluster's API
   * stores the flag for whichever worker holds the recording) and at once when the embedded
   * API asks ({@link RecordingJob.pauseChanged}). A resume that cannot start the encoder fails
   * the recording (what was captured is kept).
   */
  private followPause(): void {
    const session = this.pauseTarget;
    if (!session || this.pauseBusy || this.stopReason || this.failure || this.leaving) return;
    this.pauseBusy = true;
    const { store } = this.deps;
    const id = this.rec.id;
    void (async () => {
      const r = await store.get(id);
      if (!r || r.status !== "recording" || this.stopReason || this.leaving) return;
      if (r.paused && !session.paused) {
        const period = await session.pause();
        if (period === undefined) return;
        this.log.info({ period }, "capturing paused");
        await store.addEvent(id, { type: "paused", message: `Capturing paused at the platform's request (period ${period} ended)`, data: { period } });
      } else if (!r.paused && session.paused) {
        const pausedMs = await session.resume().catch((err: unknown) => {
          this.fail(new MeetrecError("encoder_failed", `Cannot capture again after the pause: ${publicErrorMessage(err)}`, { cause: err }));
          return undefined;
        });
        if (pausedMs === undefined) return;
        this.log.info({ pausedMs }, "capturing again");
        await store.addEvent(id, { type: "unpaused", message: `Capturing again after a pause of ${(pausedMs / 1000).toFixed(1)} s`, data: { pausedMs } });
      }
    })().catch((err) => this.log.warn({ err: errorMessage(err) }, "following the pause flag failed; trying again")).finally(() => { this.pauseBusy = false; });
  }

  /** The embedded API changed the pause flag of this recording: follow it now rather than at the next poll. */
  pauseChanged(): void {
    this.followPause();
  }

  /** See {@link frames}. */
  private framesSoFar?: FrameCounts;
  /** Wall clock (ms) of the last segment judged degraded (see {@link countFrames}); 0: none. */
  private degradedSegmentAt = 0;
  /** When this job last put `frames_degraded` on the timeline, ms (0: never). */
  private degradedReportedAt = 0;

  /**
   * A durable video segment's frame counts: to the observer (metrics), and on the timeline
   * (`frames_degraded`) when more than {@link DEGRADED_FRAMES_SHARE} of them were duplicated or
   * dropped (from a period's second segment on, third with a short first one) — an overloaded machine must not record a
   * stuttering picture silently. At most one
   * such event per {@link DEGRADED_EVENT_EVERY_MS} (a long overload would flood the timeline;
   * the view's `frames` has every count).
   */
  private async countFrames(period: number, seq: number, f: FrameCounts): Promise<void> {
    this.deps.observer?.frames?.(f);
    // Of the frames the encoder handled (written, or grabbed and thrown away), the share that went wrong.
    const bad = f.duplicated + f.dropped;
    const handled = f.encoded + f.dropped;
    // A period's first segment holds the encoder's start (its inputs opening: a few repeats of
    // the first picture on every machine); it is counted, not judged. A short first segment
    // (`capture.firstSegmentSeconds`) may share the start with the second (the counts are read
    // every 0.5 s): then neither is judged.
    const { firstSegmentSeconds: first, segmentSeconds } = this.plan.capture;
    const startSegments = first !== undefined && first < segmentSeconds ? 2 : 1;
    if (seq <= startSegments || handled === 0 || bad / handled <= DEGRADED_FRAMES_SHARE) return;
    this.degradedSegmentAt = Date.now();
    if (Date.now() - this.degradedReportedAt < DEGRADED_EVENT_EVERY_MS) return;
    this.degradedReportedAt = Date.now();
    const percent = Math.round((bad / handled) * 1000) / 10;
    this.log.warn({ period, seq, ...f }, "the encoder duplicated or dropped frames: the machine is not keeping up");
    await this.deps.store.addEvent(this.rec.id, {
      type: "frames_degraded",
      message: `Segment ${seq} of period ${period}: ${f.duplicated} of ${f.encoded} frames repeated and ${f.dropped} dropped (${percent} %); the machine did not keep up and the picture stutters there`,
      data: { period, seq, ...f, percent },
    }).catch(() => undefined);
  }

  /** (Re)arms the max-duration stop to fire in `ms` milliseconds. */
  private armLimit(ms: number): void {
    clearTimeout(this.limitTimer);
    this.limitTimer = setTimeout(() => {
      this.stopReason ??= "limit_reached";
      this.wake?.();
    }, Math.max(0, ms));
  }

  /** Runs to a terminal status and returns the final recording. Never throws for recording failures. */
  async run(): Promise<Recording> {
    const { store } = this.deps;
    const { plan } = this;
    const capture = plan.capture;
    const rec = this.rec;
    const { root, workDir } = plan.place;
    const resuming = this.opts.resume && (rec.status === "starting" || rec.status === "recording");
    if (!resuming) this.rec = await store.transition(rec.id, "starting", { reason: "dispatched" });
    let media: RecordingMedia | undefined;
    let session: CaptureSession | undefined;
    let mirror: SegmentMirror | undefined;
    let leaseTimer: NodeJS.Timeout | undefined;
    let pauseTimer: NodeJS.Timeout | undefined;
    let chunks: TrackChunks | undefined;
    try {
      media = await RecordingMedia.open(root, rec.id, { mode: plan.mode, segmentSeconds: plan.segmentSeconds, audioCodec: plan.audioCodec });
      const m = media;
      if (plan.place.bucket) {
        mirror = new SegmentMirror(m, new RecordingBucket(plan.place.bucket, rec.id, this.opts.lease?.epoch), this.log, {
          event: (e) => void store.addEvent(rec.id, e).catch(() => undefined),
          uploaded: (seconds) => this.deps.observer?.segmentStored?.({ seconds, store: "s3" }),
          ...(this.opts.lease ? { mayWrite: this.opts.lease.holds } : {}),
        }, { keepLocal: plan.keepSegments });
        this.mirror = mirror;
        // Continuing another machine's recording: its periods are in the bucket.
        const remote = resuming ? await mirror.bucket.getManifest() : undefined;
        if (remote) await m.adopt(remote);
        mirror.kick(); // what a previous run left un-uploaded goes first
      }
      leaseTimer = this.watchLease();
      const hadMedia = manifestSegmentCount(m.current) > 0;
      const free = await freeBytes(m.dir);
      if (free < capture.diskReserveBytes && !hadMedia) {
        // The message is the recording's error.message (API clients see it): no local path; the log has it.
        const e = new MeetrecError("disk_full", `Only ${Math.round(free / 1048576)} MiB free on the recording's data filesystem (capture.diskReserveBytes: ${Math.round(capture.diskReserveBytes / 1048576)} MiB); free space or lower the reserve`);
        this.log.warn({ freeBytes: free, dir: m.dir }, "not enough disk to start");
        return (this.rec = await store.transition(rec.id, "failed", { reason: e.code, error: { code: e.code, message: e.message }, endReason: "failed" }));
      }
      let firstSegment = !hadMedia;
      // When the recording's media began (wallclock ms): a resumed recording counts from its
      // first period, a new one from its first grabbed frame — not from the encoder's spawn,
      // which on a loaded machine can be seconds earlier (a short limit then stopped the
      // encoder before it had produced anything). docs/decisions.md "Duration limit".
      let mediaFrom = hadMedia ? captureOrigin(m.current) : undefined;
      // Until the first segment tells exactly (its start time), the encoder's first report estimates.
      let mediaExact = hadMedia;
      const inits = new Map<number, Buffer>();
      const t0 = Date.now();
      // Per-participant tracks: chunks durable as they arrive, numbered on from an earlier run's.
      if (plan.tracks) chunks = await TrackChunks.open(m.dir);
      const trackChunks = chunks;
      session = (this.opts.session ?? ((o, h) => new CaptureSession(o, h)))({
        recordingId: rec.id, url: plan.url, join: plan.join, mode: plan.mode, audioCodec: plan.audioCodec, audio: plan.audio, browser: plan.browser, video: plan.video,
        capture, workDir, pulse: await this.deps.pulse(), log: this.log, adapter: plan.adapter, acceptInsecureCerts: plan.acceptInsecureCerts,
        firstPeriodReason: resuming ? "resume" : "start", egress: plan.egress,
        // A paused recording taken over (failover, restart) stays paused: joined, capturing nothing.
        startPaused: resuming && rec.paused,
        ...(plan.autoStop.endedSelector ? { endedSelector: plan.autoStop.endedSelector } : {}),
        startWhen: { when: plan.start.when, timeoutMs: plan.start.timeoutSeconds * 1000, requestedAtMs: Date.parse(rec.createdAt) },
        tracks: plan.tracks,
      }, {
        ...(trackChunks ? {
          tracks: {
            begin: (source, container, startedAtMs) => trackChunks.begin(source, container, startedAtMs),
            chunk: (n, data) => trackChunks.append(n, data),
            end: (n) => trackChunks.end(n),
            problem: (message) => {
              this.log.warn({ problem: message }, "per-participant track");
              void store.addEvent(rec.id, { type: "track_problem", message: `Per-participant track: ${message}`, data: {} }).catch(() => undefined);
            },
          },
        } : {}),
        beginPeriod: async (reason, startedAt) => {
          const index = await m.beginPeriod(reason, startedAt);
          const gapMs = index > 1 ? periodGapMs(m.current, index) : 0;
          this.deps.observer?.period?.({ index, reason, gapMs });
          await store.addEvent(rec.id, {
            type: "period_started",
            message: index > 1 ? `Period ${index} started (${reason}) after a gap of ${(gapMs / 1000).toFixed(1)} s` : `Period ${index} started (${reason})`,
            data: { period: index, reason, ...(index > 1 ? { gapMs } : {}) },
          });
          return index;
        },
        init: async (period, path) => {
          if (!mediaExact) inits.set(period, await readFile(path));
          await m.addInit(period, path);
          mirror?.kick();
        },
        segment: async (period, seg) => {
          const init = inits.get(period);
          if (!mediaExact && init) {
            mediaExact = true;
            inits.clear();
            const startS = await mediaStartSeconds(init, await readFile(seg.path), plan.mode, capture.ffprobePath);
            const spawn = m.current.periods.find((p) => p.index === period)?.startedAt;
            if (startS !== undefined && spawn) {
              mediaFrom = Date.parse(spawn) + Math.round(startS * 1000);
              this.armLimit(mediaFrom + plan.maxDurationSeconds * 1000 - Date.now());
            }
          }
          try {
            const t = performance.now();
            await m.addSegment(period, seg.seq, seg.path, seg.durationMs, seg.frames);
            this.deps.observer?.segmentStored?.({ seconds: (performance.now() - t) / 1000, store: "local" });
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code === "ENOSPC") this.diskFull(0, 0);
            throw err;
          }
          mirror?.kick();
          const cur = m.current;
          const free = await freeBytes(m.dir);
          const needed = manifestBytes(cur) + capture.diskReserveBytes;
          if (free < needed) this.diskFull(free, needed);
          const frames = manifestFrames(cur);
          this.framesSoFar = frames;
          await store.progress(rec.id, { capturedMs: manifestDurationMs(cur), segmentCount: manifestSegmentCount(cur), bytes: manifestBytes(cur), periodCount: cur.periods.length, ...(frames ? { frames } : {}) });
          if (seg.frames) await this.countFrames(period, seg.seq, seg.frames);
          if (firstSegment) {
            firstSegment = false;
            await store.addEvent(rec.id, { type: "first_segment", message: "First media segment is durable", data: { msSinceStart: Date.now() - t0 } });
          }
        },
        mediaFlowing: (period, at) => {
          if (mediaFrom !== undefined) return; // provisional: the first segment corrects it
          mediaFrom = at;
          this.log.debug({ period, msSinceSpawn: at - (session?.captureStartedAt ?? at) }, "media flowing");
          this.armLimit(at + plan.maxDurationSeconds * 1000 - Date.now());
        },
        event: (e) => void store.addEvent(rec.id, e).catch(() => undefined),
        speakers: async (intervals) => {
          try {
            await store.addSpeakerIntervals(rec.id, intervals);
          } catch (err) {
            this.log.warn({ err: errorMessage(err), intervals: intervals.length }, "the speaker intervals could not be stored; the recording goes on without them");
          }
        },
        failed: (err) => this.fail(err),
        ended: (e) => this.meetingOver("meeting_ended", {
          type: "meeting_ended", data: { how: e.how, ...(e.url ? { url: e.url } : {}), ...(e.selector ? { selector: e.selector } : {}) },
          message: e.how === "navigated" ? `The page left the meeting for ${e.url}; stopping` : e.how === "closed" ? "The meeting page closed itself; stopping" : `The page shows that the meeting has ended (${e.selector}); stopping`,
        }),
        meeting: (s) => void store.meetingSeen(rec.id, { participants: { now: s.participants, peak: s.peakParticipants }, media: s.media, at: new Date(s.at).toISOString() }).catch(() => undefined),
      });
      this.session = session;
      this.deps.observer?.session?.(session);
      try {
        await session.start(this.abort.signal);
      } catch (err) {
        const e = err instanceof MeetrecError ? err : new MeetrecError("internal", errorMessage(err));
        if (this.leaving) return await this.leave(session, mirror);
        if (hadMedia) {
          // A resumed recording that cannot rejoin keeps what it has.
          this.log.warn({ code: e.code, err: e.message, cause: e.cause === undefined ? undefined : errorMessage(e.cause) }, "could not rejoin; finalizing what was captured");
          this.rec = await store.transition(rec.id, "stopping", { reason: this.stopReason ?? "rejoin_failed" });
          const error = this.stopReason ? undefined : new MeetrecError("rejoin_failed", `The recording was interrupted and could not rejoin the meeting (${e.message}); the media captured before is in the file`);
          return (this.rec = await finalizeRecording({ ...this.deps, log: this.log }, plan, this.rec, media, {
            endReason: this.stopReason ?? "failed", error, abortWhenEmpty: false,
          }));
        }
        if (this.stopReason) {
          this.log.info("stopped while starting");
          return (this.rec = await store.transition(rec.id, "aborted", { reason: "stopped_while_starting", message: "Stopped before anything was captured", endReason: this.stopReason === "limit_reached" ? "stopped" : this.stopReason }));
        }
        // The cause keeps what the message leaves out for clients (local paths).
        this.log.warn({ code: e.code, err: e.message, cause: e.cause === undefined ? undefined : errorMessage(e.cause) }, "recording could not start");
        return (this.rec = await store.transition(rec.id, "failed", { reason: e.code, error: { code: e.code, message: e.message }, endReason: "failed" }));
      }
      if (this.rec.status === "recording") {
        await store.addEvent(rec.id, { type: "resumed", message: "Rejoined the meeting after an interruption; recording continues in a new period", data: { pids: session.pids } });
      } else {
        this.rec = await store.transition(rec.id, "recording", { reason: "capturing", data: { pids: session.pids } });
      }
      // From now on (never while joining) the meeting being over ends the recording.
      this.recording = true;
      this.pauseTarget = session;
      pauseTimer = setInterval(() => this.followPause(), PAUSE_POLL_MS);
      const autoStop = new AutoStop(plan.autoStop);
      session.watcher.on("state", (s) => {
        const d = autoStop.observe(s, Date.now());
        if (!d) return;
        const since = new Date(d.sinceMs).toISOString();
        this.meetingOver(d.reason, d.reason === "meeting_empty"
          ? { type: "meeting_empty", message: d.message, data: { emptySeconds: plan.autoStop.emptySeconds, since } }
          : { type: "meeting_idle", message: d.message, data: { idleSeconds: plan.autoStop.idleSeconds, since } });
      });
      this.log.info({ pids: session.pids, maxDurationSeconds: plan.maxDurationSeconds }, "recording");
      if (!this.stopReason && !this.failure) {
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          // The limit counts wallclock from when media began (so a restart gap counts against
          // it too); until frames flow it is not armed — an encoder that never delivers is
          // restarted by the session's watchdog and fails the recording after its restarts.
          if (mediaFrom !== undefined) this.armLimit(mediaFrom + plan.maxDurationSeconds * 1000 - Date.now());
        });
      }
      clearTimeout(this.limitTimer);
      if (this.leaving) return await this.leave(session, mirror);
      this.rec = await store.transition(rec.id, "stopping", { reason: this.failure ? this.failure.code : this.stopReason });
      try {
        await session.stop();
      } catch (err) {
        this.log.error({ err: errorMessage(err) }, "storing media failed at stop");
        this.fail(new MeetrecError("store_failed", `Storing media failed: ${publicErrorMessage(err)}`, { cause: err }));
      }
      if (mirror && !(await mirror.flush(this.opts.flushTimeoutMs ?? 30_000))) {
        this.log.warn({ backlog: mirror.backlog }, "segment bucket still unreachable; finalizing from the local copies");
      }
      await mirror?.close();
      return (this.rec = await finalizeRecording({ ...this.deps, log: this.log }, plan, this.rec, media, {
        endReason: this.stopReason ?? "failed", error: this.failure, abortWhenEmpty: true,
      }));
    } catch (err) {
      // A bug or an I/O error outside the capture path: never leave the recording live.
      this.log.error({ err: errorMessage(err) }, "recording job crashed");
      await session?.close();
      const cur = await store.get(rec.id);
      if (cur && !["completed", "failed", "aborted"].includes(cur.status)) {
        const e = { code: "internal", message: `Recording job failed: ${publicErrorMessage(err)}` }; // logged in full above
        if (media && cur.status === "stopping") {
          return (this.rec = await finalizeRecording({ ...this.deps, log: this.log }, plan, await store.transition(rec.id, "finalizing", { reason: "internal" }), media, { endReason: "failed", error: new MeetrecError("internal", e.message), abortWhenEmpty: false }));
        }
        return (this.rec = await store.transition(rec.id, "failed", { reason: "internal", error: e, endReason: "failed" }));
      }
      return cur ?? this.rec;
    } finally {
      clearTimeout(this.limitTimer);
      clearInterval(leaseTimer);
      clearInterval(pauseTimer);
      this.pauseTarget = undefined;
      await chunks?.close();
      await mirror?.close();
      await rm(workDir, { recursive: true, force: true }).catch(() => undefined);
      await rmdir(dirname(workDir)).catch(() => undefined); // the recording's work directory, once no run is left in it
    }
  }
}
