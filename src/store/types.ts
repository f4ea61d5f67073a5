/**
 * Recordings, their statuses and their event timeline (the event types: timeline.ts).
 */
import type { TimelineEvents } from "./timeline.js";

/** Every status of the state machine, in flow order (DESIGN.md "How a recording flows"). */
export const RECORDING_STATUSES = ["queued", "starting", "recording", "stopping", "finalizing", "delivering", "completed", "failed", "aborted"] as const;

/** A recording's status (one of {@link RECORDING_STATUSES}). */
export type RecordingStatus = (typeof RECORDING_STATUSES)[number];

export const TERMINAL: readonly RecordingStatus[] = ["completed", "failed", "aborted"];
export const LIVE: readonly RecordingStatus[] = ["starting", "recording", "stopping"];

/**
 * Allowed transitions; anything else is a bug and is refused. `failed → delivering` is further
 * narrowed by {@link transitionAllowed}: only a recording that failed because its delivery was
 * given up (`delivery_failed`) and still has its file, when it is delivered again by hand.
 */
export const TRANSITIONS: Record<RecordingStatus, readonly RecordingStatus[]> = {
  queued: ["starting", "aborted", "failed"],
  starting: ["recording", "stopping", "failed", "aborted"],
  recording: ["stopping", "failed"],
  stopping: ["finalizing", "aborted", "failed"],
  finalizing: ["delivering", "completed", "failed"],
  delivering: ["completed", "failed"],
  completed: [],
  failed: ["delivering"],
  aborted: [],
};

/** Error code of a recording whose file delivery was given up (`delivery.giveUpAfterSeconds`). */
export const DELIVERY_FAILED = "delivery_failed";

/**
 * Whether a recording in `cur` may go to `to`: {@link TRANSITIONS}, and `failed → delivering`
 * only with error `delivery_failed` and a file.
 */
export function transitionAllowed(cur: { status: RecordingStatus; errorCode: string | null; hasFile: boolean }, to: RecordingStatus): boolean {
  if (!TRANSITIONS[cur.status].includes(to)) return false;
  if (cur.status === "failed") return cur.errorCode === DELIVERY_FAILED && cur.hasFile;
  return true;
}

/** Why a recording ended. */
export type EndReason = "stopped" | "limit_reached" | "meeting_ended" | "meeting_empty" | "meeting_idle" | "disk_full" | "failed" | "deleted";

/** What the recording captures and how (stored as given after defaults are applied). */
export interface RecordingOptions {
  url: string;
  join: unknown[];
  mode: "video" | "audio";
  /** Audio-only recordings: `aac` (M4A) or `opus` (Ogg); absent = `aac` (rows stored before it existed, and video). */
  audioFormat?: "aac" | "opus";
  /** Video mode: record the sound too (absent = true); false records the picture alone (OpenVidu's `ONLY_VIDEO`). */
  audio?: boolean;
  browser: "chromium" | "firefox";
  video: { width: number; height: number; fps: number; bitrateKbps: number };
  maxDurationSeconds: number;
  /** Accept the meeting page's TLS certificate without verification (a Talk backend's skipVerify). */
  acceptInsecureCerts?: boolean;
  /** When it stops by itself because the meeting is over, resolved at creation; absent (older rows): the configuration's now. */
  autoStop?: { emptySeconds: number; idleSeconds: number; endedSelector?: string };
  /**
   * When its first segment begins (`startWhen`), resolved at creation; absent (older rows,
   * take-overs of them): the configuration's now. `timeoutSeconds`: the longest wait for remote
   * media after joining, s.
   */
  start?: { when: "joined" | "media"; timeoutSeconds: number };
  /** Record each remote audio track on its own too (per-participant Opus files), resolved at creation; absent = false. */
  tracks?: boolean;
  /** Per-recording choices among the backend's delivery targets. */
  delivery?: {
    targets?: ("s3" | "spool" | "email" | "webhooks")[];
    email?: { to: string };
    spool?: { subdir: string };
  };
}

/** The finished file. */
export interface RecordingFile {
  name: string;
  bytes: number;
  durationSeconds: number;
  /**
   * Wall-clock time (ISO 8601) the file's time 0 shows: when its first frame or sound was
   * captured (see `FinalFile.startedAtMs`). Absent for files finalized before meetrec kept it.
   */
  startedAt?: string;
  /** Streams as probed: `video h264 1280x720 30fps`, `audio aac 48000Hz 2ch`. */
  streams: string[];
  /** Where a copy was delivered in a bucket (set once the S3 delivery succeeded). */
  s3?: { bucket: string; key: string };
  /** Cluster: where the file itself is kept (the segment bucket); no machine keeps it locally. */
  stored?: { bucket: string; key: string };
  /**
   * Where each capture period lies in the file, in order (finalize joins periods without the
   * gaps between them): absent in files finalized before it was recorded.
   */
  timeline?: FilePeriod[];
  /**
   * Per-participant audio (`tracks: true`): one Ogg/Opus file per remote audio track, beside
   * the file (media/tracks.ts). Absent when none were asked for or none arrived.
   */
  tracks?: RecordingTrack[];
}

/** One per-participant audio file beside the finished file (media/tracks.ts). */
export interface RecordingTrack {
  /** `{file name}.track-{n}.ogg`. */
  name: string;
  /** The remote track it holds: `{peer connection}/{track id}` (the speakers sidecar's `source`). */
  source: string;
  /**
   * Where the track's first sample lies in the file, ms from the file's start (negative: the
   * track begins before the file). Absent when the file has no timeline.
   */
  offsetMs?: number;
  /** Wall clock (ISO 8601) of the track's first sample. */
  startedAt: string;
  durationSeconds: number;
  bytes: number;
}

/**
 * One capture period in the finished file: file time `fileMs` (ms from the file's start) shows
 * the meeting at wall clock `wallMs` (ms since the epoch), for `durationMs`.
 */
export interface FilePeriod {
  fileMs: number;
  wallMs: number;
  durationMs: number;
}

/**
 * One stretch in which a participant spoke, as the meeting page told it (wall clock, ms since
 * the epoch). Kept with the recording for the platforms that want it (Nextcloud Talk's
 * speaking-times sidecar, shared/protocols/nextcloud-talk.md §6).
 */
export interface SpeakerInterval {
  /** The participant's session in the meeting (Talk: its signaling session id). */
  participantId: string;
  /** Display name when the stretch began; `""` when the page did not know it. */
  participantName: string;
  /** Account id when the stretch began; `""` for guests or when unknown. */
  participantUserId: string;
  startMs: number;
  stopMs: number;
  /** How the start was seen (Talk: `speaking`, `participantFlagsChanged`). */
  startType: string;
  /** How the stop was seen (Talk: `stoppedSpeaking`, `participantFlagsChanged`, `peerEnded`, `stillSpeaking`). */
  stopType: string;
}

export interface Recording {
  id: string;
  backend: string;
  status: RecordingStatus;
  options: RecordingOptions;
  metadata: Record<string, unknown>;
  endReason: EndReason | null;
  error: { code: string; message: string } | null;
  createdAt: string;
  startedAt: string | null;
  endedAt: string | null;
  updatedAt: string;
  /** Media captured so far (sum of durable segments), ms. */
  capturedMs: number;
  segmentCount: number;
  /** Bytes of durable segments. */
  bytes: number;
  periodCount: number;
  /** The video encoder's frame counts over the durable segments (video recordings; null before the first). */
  frames: FrameCounts | null;
  file: RecordingFile | null;
  /** Cluster: the worker that holds the recording now (null when none does, and in embedded mode). */
  worker: string | null;
  /** The meeting as the recorder saw it last (its media watcher), null before the page was watched. */
  meeting: MeetingSeen | null;
  /** Capturing is paused at the platform's request (meaningful while `recording`). */
  paused: boolean;
}

/**
 * Frames of a video encoder run, from ffmpeg's own statistics (`-progress`: `frame`,
 * `dup_frames`, `drop_frames`): `encoded` frames written at the constant output rate, of which
 * `duplicated` repeat the previous grab because none came in time (the grab fell behind: the
 * picture stands still there), and `dropped` grabs thrown away (two in one output slot).
 */
export interface FrameCounts {
  encoded: number;
  duplicated: number;
  dropped: number;
}

/** What the recorder's media watcher saw of the meeting (stored as the watcher reports it). */
export interface MeetingSeen {
  /** Remote media sources (a participant's camera + microphone) live now, and the most at once. */
  participants: { now: number; peak: number };
  /** Whether remote sound and pictures are flowing now. */
  media: { audio: boolean; video: boolean };
  /** When this was seen (ISO 8601). */
  at: string;
}

/**
 * One entry of a recording's timeline, as stored. `type` and `data` are what the catalogue
 * ({@link TimelineEvents}) says for the events meetrec writes now; they stay loose here because
 * stored history is never rewritten (an old row may hold a type or keys no longer listed).
 */
export interface RecordingEvent {
  id: number;
  recordingId: string;
  at: string;
  /** `status` for a transition; otherwise another of `TIMELINE_EVENT_TYPES` (`period_started`, `encoder_exited`, …). */
  type: string;
  /** The status reached (`status` events only). */
  status: RecordingStatus | null;
  /** Why the transition happened (`status` events only). */
  reason: string | null;
  message: string | null;
  data: Record<string, unknown> | null;
}

/** Extra fields set together with a transition. */
export interface TransitionPatch {
  reason?: string;
  message?: string;
  endReason?: EndReason;
  error?: { code: string; message: string };
  file?: RecordingFile;
  /** The `status` event's data ({@link TimelineEvents}). */
  data?: TimelineEvents["status"];
}

/** `file`: hands the finished file over (required before `completed`); `notify`: tells about a change. */
export type DeliveryKind = "file" | "notify";
export type DeliveryStatus = "pending" | "succeeded" | "failed";

/** One thing to hand over for a recording, retried until it succeeds. */
export interface Delivery {
  id: string;
  recordingId: string;
  /** `webhook:{name}`, `spool`, … */
  target: string;
  kind: DeliveryKind;
  /** What to send (notifications: the event). */
  payload: unknown;
  status: DeliveryStatus;
  attempts: number;
  lastError: string | null;
  /** When the next attempt is due (ISO 8601). */
  nextAttemptAt: string;
  /** First attempt since it was created or last redelivered (ISO 8601): the give-up clock starts here. */
  firstAttemptAt: string | null;
  /** When a `redeliver` made it due and that attempt has not been made yet (ISO 8601): a redelivery is pending. */
  redeliverAt: string | null;
  createdAt: string;
  updatedAt: string;
}

/** One stored attempt of a delivery. */
export interface DeliveryAttempt {
  id: number;
  deliveryId: string;
  recordingId: string;
  attempt: number;
  at: string;
  outcome: "ok" | "error";
  message: string | null;
  nextAttemptAt: string | null;
}
