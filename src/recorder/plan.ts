/**
 * A recording's plan: everything one run of it needs, resolved once when the run starts —
 * where its media goes (media root, recording and work directories, segment bucket), how it is
 * captured (page, join, browser, video, capture settings, egress, platform adapter), its limit,
 * and what follows it (file targets, whether the final file goes to the bucket). Every stage of
 * the run (capture, storage, finalize) reads the plan, never the configuration again, as LiveKit
 * Egress resolves one `PipelineConfig` per request.
 */
import type { CaptureConfig } from "../config/index.js";
import type { BrowserKind, JoinStep, PlatformAdapter } from "../capture/index.js";
import type { BrowserEgress } from "../egress/index.js";
import type { MediaPlace } from "../media/index.js";
import type { Recording, RecordingOptions } from "../store/index.js";

/** See module doc. */
export interface RecordingPlan {
  id: string;
  backend: string;
  mode: "video" | "audio";
  /** Codec of the sound: `opus` for audio-only recordings in Ogg (`audioFormat: opus`), else `aac`. */
  audioCodec: "aac" | "opus";
  /** Video mode: the sound is recorded too (false: the picture alone). */
  audio: boolean;
  /** Where the media is kept. */
  place: MediaPlace;
  /** The meeting: URL, join steps, browser, frame size/rate/bitrate, TLS leniency. */
  url: string;
  join: JoinStep[];
  browser: BrowserKind;
  video: RecordingOptions["video"];
  acceptInsecureCerts: boolean;
  /** Where the browser may go. */
  egress: BrowserEgress;
  /** Platform join adapter (Talk), if the meeting needs one. */
  adapter?: PlatformAdapter;
  capture: CaptureConfig;
  /** Media segment duration, s. */
  segmentSeconds: number;
  /** The recording stops by itself this long after its media began, s. */
  maxDurationSeconds: number;
  /** File delivery targets the finished file must reach: any → `delivering`, none → `completed`. */
  fileTargets: string[];
  /** When the recording stops by itself because the meeting is over (see auto-stop.ts). */
  autoStop: { emptySeconds: number; idleSeconds: number; endedSelector?: string };
  /** When the first segment begins: after joining, or once remote media plays (at most `timeoutSeconds` s after joining). */
  start: { when: "joined" | "media"; timeoutSeconds: number };
  /** Each remote audio track is recorded on its own too (`tracks: true`; media/tracks.ts). */
  tracks: boolean;
  /** Cluster: the final file is uploaded to the segment bucket (no machine keeps it). */
  uploadFinal: boolean;
  /**
   * Segments stay where they are — on local disk after their upload to the bucket, and on disk
   * and in the bucket after finalize: the caller removes them once it has handed the file on
   * (OpenVidu's container: a stitch within the server's 30 s needs local copies, and a
   * container killed before the server's files are written must be able to make them again).
   */
  keepSegments: boolean;
}

/** What {@link planRecording} takes from the process around it. */
export interface PlanContext {
  capture: CaptureConfig;
  /** Where a recording's media is (media layout). */
  place(rec: Pick<Recording, "id" | "backend">): MediaPlace;
  /** The browser's egress rules for a backend. */
  egress(backend: string): BrowserEgress;
  /** The platform join adapter of a recording, if it needs one. */
  adapterFor(rec: Recording): PlatformAdapter | undefined;
  /** The file targets of a recording (delivery registry). */
  fileTargets(rec: Recording): string[];
  /** A recording's auto-stop settings (stored with it; the configuration's for older rows). */
  autoStop(rec: Recording): RecordingPlan["autoStop"];
  /** When `rec`'s first segment begins. */
  start(rec: Recording): RecordingPlan["start"];
  uploadFinal: boolean;
  /** See {@link RecordingPlan.keepSegments} (default false). */
  keepSegments?: boolean;
}

/** Resolves `rec`'s plan. Pure: reads `rec` and the context, starts nothing. */
export function planRecording(ctx: PlanContext, rec: Recording): RecordingPlan {
  const o = rec.options;
  return {
    id: rec.id, backend: rec.backend, mode: o.mode, audioCodec: o.mode === "audio" && o.audioFormat === "opus" ? "opus" : "aac", audio: o.mode === "audio" || o.audio !== false, place: ctx.place(rec),
    url: o.url, join: o.join as JoinStep[], browser: o.browser, video: o.video, acceptInsecureCerts: o.acceptInsecureCerts ?? false,
    egress: ctx.egress(rec.backend), adapter: ctx.adapterFor(rec),
    capture: ctx.capture, segmentSeconds: ctx.capture.segmentSeconds, maxDurationSeconds: o.maxDurationSeconds,
    fileTargets: ctx.fileTargets(rec), uploadFinal: ctx.uploadFinal, autoStop: ctx.autoStop(rec), start: ctx.start(rec), tracks: o.tracks ?? false, keepSegments: ctx.keepSegments ?? false,
  };
}
