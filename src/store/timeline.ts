/**
 * The catalogue of a recording's timeline: every event type meetrec writes, with the shape of
 * its `data`. The types and the `data` keys are an API (clients, webhooks and tests read them):
 * never rename one. Stored history is never rewritten, so what is *read* back
 * ({@link RecordingEvent}) keeps `type: string` and loose `data`: an old row may hold a type or
 * a key this catalogue no longer lists.
 *
 * `data` is stored as JSON: a key whose value is `undefined` is left out, hence the optional
 * keys. An event type whose entry is `void` has no data (stored `data: null`).
 */
import type { DeliveryKind, RecordingStatus } from "./types.js";

/** Process ids of a capture session (display, the sink's latency pin, browser, encoder); one is absent while not running. */
export interface SessionPids {
  display?: number;
  /** The sink's latency pin (`parec`, capture/audio.ts). */
  sinkPin?: number;
  browser?: number;
  encoder?: number;
}

/**
 * Every timeline event type → its `data`. Durations are ms, sizes bytes, times ISO 8601.
 * `url`s are redacted (no query or credentials); `rule` is the egress rule's stable name
 * (`EgressRule`: `origin`, `loopback`, `private`, …).
 */
export interface TimelineEvents {
  /** A status change (written by `RecordingStore.transition` with `status` and `reason` set); → `recording` carries the session's process ids. */
  status: { pids: SessionPids };

  // The recorder's run (recorder/job.ts, recovery.ts, cluster-intake.ts).
  /** An encoder run began (first run, resume, encoder restart); `gapMs`: media lost since the previous period (from period 2). */
  period_started: { period: number; reason: string; gapMs?: number };
  /** `startWhen: media`: remote media played `waitedMs` after joining, `sinceRequestMs` after the recording was asked for; the first period begins now. */
  media_started: { waitedMs: number; sinceRequestMs: number };
  /** `startWhen: media`: no remote media `waitedMs` after joining (`startTimeoutSeconds`); the recording begins anyway. */
  media_wait_timed_out: { waitedMs: number };
  /**
   * One stretch of speaking on an inbound audio track (`track`: `{pc}/{trackId}`), wall clock
   * ms; `stopType` `silence` | `left` | `stillSpeaking` (capture/speaking.ts). Only where the
   * platform adapter does not read who spoke itself.
   */
  speaking: { track: string; startMs: number; stopMs: number; stopType: string };
  /** Capturing paused at the platform's request: period `period` ended; nothing is captured until `unpaused`. */
  paused: { period: number };
  /** Capturing again after a pause of `pausedMs`; a new period follows. */
  unpaused: { pausedMs: number };
  /** The recording's first media segment became durable, `msSinceStart` after its run began. */
  first_segment: { msSinceStart: number };
  /**
   * A video segment in which more than 5 % of the frames were duplicated or dropped by the
   * encoder (the machine did not keep up; the picture stutters there): segment `seq` of
   * `period`, its frame counts (store/types.ts `FrameCounts`) and the share of duplicated +
   * dropped in encoded + dropped, in percent.
   */
  frames_degraded: { period: number; seq: number; encoded: number; duplicated: number; dropped: number; percent: number };
  /** A video recording was finalized without a sound track (the page played no sound). */
  no_audio: void;
  /**
   * Per-participant tracks (`tracks: true`): a track could not be recorded on its own, or a
   * chunk file could not be made a track file (`n` its number); the recording goes on.
   */
  track_problem: { n?: number };
  /** Per-participant tracks: `count` Ogg/Opus files were made beside the file (media/tracks.ts). */
  tracks_finalized: { count: number; skipped: number };
  /** The data filesystem ran short of space while recording: the recording stops and what exists is finalized. */
  disk_full: { freeBytes: number; neededBytes: number };
  /** Cluster SIGTERM: this worker left the live recording to another (always `{}`). */
  handed_over: Record<string, never>;
  /** A run rejoined a recording that was live when its previous run ended (restart, failover); its new process ids. */
  resumed: { pids: SessionPids };
  /** meetrec stopped during the recording (found at start-up or by `meetrec recover`): rejoined, or finalized. */
  interrupted: void;
  /** Cluster: a worker claimed a recording another worker held (a new lease epoch). */
  taken_over: { worker: string; epoch: number };
  /** No participant's media for `autoStop.emptySeconds`: everyone left; the recording stops (`since`: when the last one left, ISO 8601). */
  meeting_empty: { emptySeconds: number; since: string };
  /** Participants present, nobody audible and no camera on for `autoStop.idleSeconds`; the recording stops. */
  meeting_idle: { idleSeconds: number; since: string };
  /** The page left the meeting: it navigated to another origin, closed itself, or showed `autoStop.endedSelector`; the recording stops. */
  meeting_ended: { how: "navigated" | "closed" | "selector"; url?: string; selector?: string };

  // The capture session (capture/session.ts): see SessionEvent.
  /** The meeting page opened a window; the recorder closed it. */
  popup_closed: { url: string };
  /** The meeting tab crashed (the browser lived on); the browser is relaunched. */
  tab_crashed: { pid?: number };
  /** The egress policy refused a top-level navigation of the page: the join, or the recording, fails. */
  navigation_blocked: { url: string; rule: string };
  /** The egress policy refused a request of the page (`url`) or a connection through the egress proxy (`host`, `host:port`). */
  request_blocked: { url: string; rule: string } | { host: string; rule: string };
  /** The encoder closed no segment for `silentMs`; it is killed (a new period follows). */
  encoder_hung: { period: number; silentMs: number; pid?: number };
  /** The meeting page answered no probe for `silentMs`; the browser is killed and relaunched. */
  page_hung: { silentMs: number; pid?: number };
  /** The browser closed or crashed during the recording; it is relaunched and rejoins. */
  browser_disconnected: void;
  /** The browser was relaunched and rejoined the meeting, `gapMs` after it was lost; `attempt` counts the session's relaunches. */
  browser_rejoined: { gapMs: number; attempt: number; pid?: number };
  /** One relaunch-and-rejoin attempt failed (tried again until `capture.maxBrowserRestarts`). */
  browser_rejoin_failed: { attempt: number };
  /** Storing a closed init or media segment failed (the recording then ends `store_failed`). */
  store_error: void;
  /** The encoder exited without being asked to; `stderr`: its last lines, local paths removed. */
  encoder_exited: { period: number; code: number | null; signal: string | null; stderr: string };

  // The segment mirror (media/mirror.ts): see MirrorEvent.
  /** Uploading to the segment bucket failed (first failure of a run of failures); segments wait on local disk. */
  segment_upload_failing: { file?: string };
  /** The segment bucket is reachable again after `downMs`; `backlog` files still to upload. */
  segment_upload_recovered: { downMs: number; backlog: number };

  // The cluster's job reconciler (dispatch/reconciler.ts).
  /** No live job carried an unfinished recording (Redis lost it, or its run failed): it was queued again. */
  requeued: { jobState: string; status: RecordingStatus; failedReason?: string };
  /** The recording's job failed too often (`MAX_FAILED_REQUEUES`): not queued again; `meetrec recover` finalizes it. */
  requeue_gave_up: { failedReason?: string; requeues: number };

  // The store's own, and delivery and retention.
  /** The metadata was changed through the API: the keys set and removed (not their values). */
  metadata_changed: { set: string[]; removed: string[] };
  /** A redelivery by hand: the targets made due. */
  redeliver_requested: { targets: string[] };
  /** A delivery was given up after `delivery.giveUpAfterSeconds` of failures. */
  delivery_given_up: { target: string; kind: DeliveryKind; attempts: number; firstAttemptAt: string | null; lastError: string };
  /** Retention removed the recording's media (`file`: its name; `bucket`: the S3 copy removed, `s3://bucket/key`). */
  retention_purged: { file?: string; bucket: string | null };
}

/** A timeline event type (the stored `type`). */
export type TimelineEventType = keyof TimelineEvents;

/** Every type of {@link TimelineEvents}, for the API's description and for checks at run time. */
export const TIMELINE_EVENT_TYPES = [
  "status",
  "period_started", "media_started", "media_wait_timed_out", "speaking", "paused", "unpaused", "first_segment", "frames_degraded", "no_audio", "track_problem", "tracks_finalized", "disk_full", "handed_over", "resumed", "interrupted", "taken_over",
  "meeting_empty", "meeting_idle", "meeting_ended",
  "popup_closed", "tab_crashed", "navigation_blocked", "request_blocked", "encoder_hung", "page_hung",
  "browser_disconnected", "browser_rejoined", "browser_rejoin_failed", "store_error", "encoder_exited",
  "segment_upload_failing", "segment_upload_recovered",
  "requeued", "requeue_gave_up",
  "metadata_changed", "redeliver_requested", "delivery_given_up", "retention_purged",
] as const satisfies readonly TimelineEventType[];

/** Compile-time check that {@link TIMELINE_EVENT_TYPES} lists every type: one left out fails here, named. */
type ListsEveryType<Unlisted extends never> = Unlisted;
type Checked = ListsEveryType<Exclude<TimelineEventType, (typeof TIMELINE_EVENT_TYPES)[number]>>;

/** Every event as written, one member per type: `{ type, message, data }`, without `data` when the type has none. */
type AnyEvent = {
  [T in TimelineEventType]: [TimelineEvents[T]] extends [void] ? { type: T; message: string } : { type: T; message: string; data: TimelineEvents[T] };
}[TimelineEventType];

/** The events of the types in `K` (`Extract` of the catalogue; a type it does not list does not compile). */
export type EventOf<K extends TimelineEventType> = Extract<AnyEvent, { type: K }>;

/** An event `RecordingStore.addEvent` appends: any type but `status` (only transitions write those). */
export type TimelineEvent = EventOf<Exclude<TimelineEventType, "status">>;
