/**
 * The recording as the API, the webhooks and the spool sidecars show it: one zod schema per
 * view (the types are inferred from them) and the functions that build them.
 */
import { z } from "zod";
import { trackNumber } from "../media/index.js";
import { RECORDING_STATUSES, TIMELINE_EVENT_TYPES, type Delivery, type DeliveryAttempt, type Recording, type RecordingEvent } from "../store/index.js";

const Status = z.enum(RECORDING_STATUSES);

/**
 * One timeline entry. `type` is described from the catalogue (store/timeline.ts) but stays a
 * string: stored history is never rewritten, so an old recording may hold a type no longer listed.
 */
export const EventView = z.object({
  at: z.string().describe("When it happened (ISO 8601)"),
  type: z.string().describe(`What happened: \`status\` for a status change, otherwise one of ${TIMELINE_EVENT_TYPES.filter((t) => t !== "status").map((t) => `\`${t}\``).join(", ")}. `
    + "Recordings stored by another version may hold other types: treat an unknown one as informational."),
  status: Status.nullable().describe("The status reached (`status` events; null otherwise)"),
  reason: z.string().nullable().describe("Why the status changed (`status` events; null otherwise)"),
  message: z.string().nullable().describe("What happened, in a sentence for people"),
  data: z.record(z.string(), z.unknown()).nullable().describe("Details, whose keys depend on the type (durations in ms, sizes in bytes); null when the type has none"),
});

/** Attempts listed per delivery in the recording view (the last ones; `attemptCount` counts all). */
export const ATTEMPTS_SHOWN = 20;

export const DeliveryView = z.object({
  target: z.string().describe("webhook:{name} | spool | s3 | email | talk:upload | talk:callback"),
  kind: z.enum(["file", "notify"]),
  event: z.string().nullable().describe("webhook event type, for notifications"),
  status: z.enum(["pending", "succeeded", "failed"]).describe("`failed`: given up after `delivery.giveUpAfterSeconds` of failures (or the media was removed); `redeliver` retries it"),
  attempts: z.array(z.object({ at: z.string(), outcome: z.enum(["ok", "error"]), message: z.string().nullable(), nextAttemptAt: z.string().nullable() }))
    .describe(`The last ${ATTEMPTS_SHOWN} attempts, oldest first (attemptCount counts all of them)`),
  attemptCount: z.number().int().describe("Attempts made in all"),
  nextAttemptAt: z.string().nullable(),
  redeliverPending: z.boolean().describe("A redeliver made it due and it has not been attempted yet (another redeliver is refused until then)"),
});
export type DeliveryView = z.infer<typeof DeliveryView>;

export const RecordingView = z.object({
  id: z.string(),
  status: Status,
  backend: z.string(),
  url: z.string(),
  mode: z.enum(["video", "audio"]),
  audioFormat: z.enum(["aac", "opus"]).nullable().describe("Audio-only recordings: `aac` (M4A) or `opus` (Ogg); null for video (H.264 + AAC in MP4)"),
  browser: z.enum(["chromium", "firefox"]),
  video: z.object({ width: z.number(), height: z.number(), fps: z.number(), bitrateKbps: z.number() }),
  maxDurationSeconds: z.number(),
  tracks: z.boolean().describe("Each remote audio track is recorded on its own too (per-participant files in `file.tracks`)"),
  metadata: z.record(z.string(), z.unknown()),
  endReason: z.string().nullable().describe("stopped | limit_reached | meeting_ended | meeting_empty | meeting_idle | disk_full | failed | deleted"),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
  createdAt: z.string(),
  startedAt: z.string().nullable(),
  endedAt: z.string().nullable(),
  updatedAt: z.string(),
  capturedSeconds: z.number().describe("Media durably stored so far, s"),
  segmentCount: z.number(),
  bytes: z.number().describe("Bytes of stored segments"),
  periods: z.number().describe("Encoder runs so far; more than 1 after a restart, a failover or a pause"),
  paused: z.boolean().describe("Capturing is paused (POST …/pause; …/resume captures again); only while recording"),
  frames: z.object({
    encoded: z.number().int().describe("Frames written at the constant output rate"),
    duplicated: z.number().int().describe("Of those, repeats of the previous picture because no new grab came in time (the machine did not keep up; the picture stands still)"),
    dropped: z.number().int().describe("Grabs thrown away"),
  }).nullable().describe("The video encoder's own frame counts over the stored segments; more than 5 % duplicated or dropped in a segment puts `frames_degraded` on the timeline. Null for sound-only recordings and before the first segment"),
  file: z.object({
    name: z.string(), bytes: z.number(), durationSeconds: z.number(),
    startedAt: z.string().optional().describe("Wall-clock time (ISO 8601) the file's first moment was captured: its time 0. Absent for files made before meetrec kept it"),
    streams: z.array(z.string()), url: z.string(),
    tracks: z.array(z.object({
      name: z.string().describe("`{file}.track-{n}.ogg`: Opus in Ogg"),
      source: z.string().describe("The remote track: `{peer connection}/{track id}`, as in the speakers sidecar"),
      offsetMs: z.number().optional().describe("Where the track's first sample lies in the file, ms (negative: it begins before the file); absent without a file timeline"),
      startedAt: z.string().describe("Wall clock (ISO 8601) of the track's first sample"),
      durationSeconds: z.number(), bytes: z.number(), url: z.string(),
    })).optional().describe("Per-participant audio (`tracks: true`): one file per remote audio track and capture run"),
  }).nullable(),
  worker: z.string().nullable().describe("Cluster mode: the worker recording it now (null while queued, after it ends, and in embedded mode)"),
  participants: z.object({ now: z.number().int(), peak: z.number().int() }).nullable()
    .describe("Remote media sources (a participant's camera and microphone) the recorder's browser receives now, and the most at once; null before the page was watched"),
  media: z.object({ audio: z.boolean(), video: z.boolean() }).nullable().describe("Whether remote sound and pictures flow now (as last seen while recording)"),
  events: z.array(EventView).optional(),
  deliveries: z.array(DeliveryView).optional().describe(`Where the file and the notifications went, with the last ${ATTEMPTS_SHOWN} attempts of each and a count of all`),
});
export type RecordingView = z.infer<typeof RecordingView>;

/** Path of a recording's file on the API, relative to its base URL. */
export const filePath = (id: string) => `/v1/recordings/${id}/file`;

/** Path of a recording's per-participant track file `{file}.track-{n}.ogg` on the API, relative to its base URL. */
export const trackPath = (id: string, trackName: string) => `/v1/recordings/${id}/tracks/${trackNumber(trackName)}`;

/**
 * Builds the view; `base` is the absolute URL prefix of the API (`http://host:port`, see
 * `baseUrl`), or `""` for a view whose file URL is made absolute later ({@link withBase}).
 */
export function toView(rec: Recording, base: string, events?: RecordingEvent[]): RecordingView {
  const o = rec.options;
  return {
    id: rec.id, status: rec.status, backend: rec.backend, url: o.url, mode: o.mode, audioFormat: o.mode === "audio" ? (o.audioFormat ?? "aac") : null, browser: o.browser, video: o.video,
    maxDurationSeconds: o.maxDurationSeconds, tracks: o.tracks ?? false, metadata: rec.metadata, endReason: rec.endReason, error: rec.error,
    createdAt: rec.createdAt, startedAt: rec.startedAt, endedAt: rec.endedAt, updatedAt: rec.updatedAt,
    capturedSeconds: Math.round(rec.capturedMs) / 1000, segmentCount: rec.segmentCount, bytes: rec.bytes, periods: rec.periodCount,
    paused: rec.status === "recording" && rec.paused,
    frames: rec.frames,
    file: rec.file ? {
      name: rec.file.name, bytes: rec.file.bytes, durationSeconds: rec.file.durationSeconds,
      ...(rec.file.startedAt ? { startedAt: rec.file.startedAt } : {}), streams: rec.file.streams, url: `${base}${filePath(rec.id)}`,
      ...(rec.file.tracks?.length ? { tracks: rec.file.tracks.map((t) => ({ ...t, url: `${base}${trackPath(rec.id, t.name)}` })) } : {}),
    } : null,
    worker: rec.worker,
    participants: rec.meeting?.participants ?? null,
    media: rec.meeting?.media ?? null,
    ...(events ? { events: events.map((e) => ({ at: e.at, type: e.type, status: e.status, reason: e.reason, message: e.message, data: e.data })) } : {}),
  };
}

/**
 * A view made without a base (a cluster worker queues webhook payloads; the API process that
 * sends them knows the base), with its file URL made absolute: `base` + the path.
 */
export function withBase<T extends { file?: { url: string; tracks?: { url: string }[] } | null }>(view: T, base: string): T {
  if (!view.file || !view.file.url.startsWith("/")) return view;
  const tracks = view.file.tracks?.map((t) => ({ ...t, url: `${base}${t.url}` }));
  return { ...view, file: { ...view.file, url: `${base}${view.file.url}`, ...(tracks ? { tracks } : {}) } };
}

/**
 * Deliveries with their attempts, as the API shows them: the last {@link ATTEMPTS_SHOWN}
 * attempts of each (of `attempts`, which may hold fewer), and the count of all.
 */
export function toDeliveryViews(deliveries: Delivery[], attempts: DeliveryAttempt[]): DeliveryView[] {
  return deliveries.map((d) => ({
    target: d.target,
    kind: d.kind,
    event: d.kind === "notify" ? ((d.payload as { type?: string } | null)?.type ?? null) : null,
    status: d.status,
    attempts: attempts.filter((a) => a.deliveryId === d.id).slice(-ATTEMPTS_SHOWN).map((a) => ({ at: a.at, outcome: a.outcome, message: a.message, nextAttemptAt: a.nextAttemptAt })),
    attemptCount: d.attempts,
    nextAttemptAt: d.status === "pending" ? d.nextAttemptAt : null,
    redeliverPending: d.status === "pending" && d.redeliverAt !== null,
  }));
}
