/**
 * What a platform may ask for when it starts a recording, and how the request becomes the
 * stored recording options (defaults, backend overrides, limits, allowed origins).
 */
import { z } from "zod";
import { JoinSteps, stepOrigins } from "../capture/index.js";
import { AUDIO_FORMATS, AutoStopSettings, START_WHEN, VIDEO_UNITS, videoExcess, videoLimitsOf, type BackendConfig, type Config, type StartWhen } from "../config/index.js";
import { isSafeSubdir } from "../delivery/index.js";
import type { RecordingOptions } from "../store/index.js";
import { MeetrecError } from "../util/errors.js";

const httpUrl = z.url({ protocol: /^https?$/, error: "must be an http or https URL" }).max(4000);

/** Body of `POST /v1/recordings`. Unknown fields are refused. */
export const RecordingRequest = z.strictObject({
  url: httpUrl.describe("Meeting URL the recorder opens"),
  join: JoinSteps.optional().describe("Steps run in order after the page has loaded"),
  mode: z.enum(["video", "audio"]).optional().describe("`audio` records sound only"),
  startWhen: z.enum(START_WHEN).optional().describe("When the first segment begins: `media` — when remote media plays (at most `startTimeoutSeconds` after joining), `joined` — right after the join steps; over the backend's and the server's `startWhen`"),
  startTimeoutSeconds: z.number().int().min(1).max(600).optional().describe("With `startWhen: media`: the longest wait for remote media after joining, s; then the recording begins anyway"),
  autoStop: AutoStopSettings.optional().describe("When it stops by itself because the meeting is over: `emptySeconds` (no participant's media for that long → `meeting_empty`; 0 = never), `idleSeconds` (nobody audible, no camera → `meeting_idle`), `endedSelector` (a CSS selector that appears when the meeting has ended → `meeting_ended`); over the backend's and the server's `autoStop`"),
  tracks: z.boolean().optional().describe("Also record each remote audio track on its own (per-participant Opus files `{file}.track-{n}.ogg`, listed in `file.tracks` with their offset in the file, at `GET /v1/recordings/{id}/tracks/{n}`); over the backend's and the server's `tracks` (default false)"),
  audioFormat: z.enum(AUDIO_FORMATS).optional().describe("Audio-only recordings: `aac` (AAC in M4A) or `opus` (Opus in Ogg); default the backend's `audioFormat`. Not for video recordings (H.264 + AAC in MP4)"),
  browser: z.enum(["chromium", "firefox"]).optional(),
  video: z.strictObject({
    width: z.number().int().min(160).max(3840).multipleOf(2).optional(),
    height: z.number().int().min(120).max(2160).multipleOf(2).optional(),
    fps: z.number().int().min(1).max(60).optional(),
    bitrateKbps: z.number().int().min(100).max(50000).optional(),
  }).optional().describe("Frame size (px), frame rate (fps), bitrate (kbit/s); at most the backend's videoLimits (default 1920×1080, 30 fps, 8000 kbit/s), else 422"),
  maxDurationSeconds: z.number().int().min(1).optional().describe("The recording stops by itself after this long"),
  delivery: z.strictObject({
    targets: z.array(z.enum(["s3", "spool", "email", "webhooks"])).optional().describe("Only these of the backend's targets (default: all it has)"),
    email: z.strictObject({ to: z.email() }).optional().describe("Send the ready mail here"),
    spool: z.strictObject({ subdir: z.string().refine(isSafeSubdir, "letters, digits, . _ - (not starting with a dot, no ..), at most 128") }).optional(),
  }).optional().describe("Per-recording choices among the backend's delivery targets"),
  metadata: z.record(z.string().max(100), z.union([z.string().max(2000), z.number(), z.boolean(), z.null()]))
    .refine((m) => Object.keys(m).length <= 50, "at most 50 keys").optional()
    .describe("Opaque key/value pairs returned with the recording"),
});
export type RecordingRequest = z.infer<typeof RecordingRequest>;

/**
 * Checks that `origin` may be opened for `backend`.
 * @throws MeetrecError `origin_not_allowed`.
 */
export function checkOrigin(backendName: string, backend: BackendConfig, origin: string): void {
  if (backend.allowedOrigins.length === 0) return;
  const allowed = backend.allowedOrigins.map((o) => new URL(o).origin);
  if (!allowed.includes(origin)) {
    throw new MeetrecError("origin_not_allowed", `Backend ${backendName} may not record pages on ${origin}; allowed origins: ${allowed.join(", ")}. Add it to backends.${backendName}.allowedOrigins.`, { details: { origin } });
  }
}

/**
 * Applies defaults and backend overrides, enforces limits and origins. The resolved `video`
 * (global defaults, the backend's, then the request's) must fit the backend's `videoLimits`.
 * @throws MeetrecError `origin_not_allowed`; `validation_failed` (`details.field` names the first
 * bad field — `video.width`, `maxDurationSeconds`, `audioFormat`, `delivery` — and, for video, `details.errors`
 * has one `{field, message}` per setting above its ceiling).
 */
export function resolveOptions(cfg: Config, backendName: string, req: RecordingRequest): RecordingOptions {
  const backend = cfg.backends[backendName];
  const join = req.join ?? [];
  for (const origin of [new URL(req.url).origin, ...stepOrigins(join)]) checkOrigin(backendName, backend, origin);
  const ceiling = Math.min(cfg.maxDurationSeconds, backend.maxDurationSeconds ?? Infinity);
  const maxDurationSeconds = req.maxDurationSeconds ?? ceiling;
  if (maxDurationSeconds > ceiling) {
    throw new MeetrecError("validation_failed", `maxDurationSeconds ${maxDurationSeconds} is above this server's limit of ${ceiling} s`, { details: { field: "maxDurationSeconds" } });
  }
  const video = { ...cfg.video, ...backend.video, ...req.video };
  const excess = videoExcess(video, videoLimitsOf(cfg, backendName));
  if (excess.length) {
    const errors = excess.map((e) => ({ field: `video.${e.field}`, message: `video.${e.field} ${e.value} ${VIDEO_UNITS[e.field]} is above backend ${backendName}'s limit of ${e.limit} ${VIDEO_UNITS[e.field]}` }));
    throw new MeetrecError("validation_failed", `${errors.map((e) => e.message).join("; ")}; ask for at most the limit (the server's videoLimits)`, { details: { field: errors[0].field, errors } });
  }
  const mode = req.mode ?? "video";
  if (req.audioFormat && mode !== "audio") {
    throw new MeetrecError("validation_failed", "audioFormat applies to audio-only recordings (mode: audio); video recordings are H.264 + AAC in MP4", { details: { field: "audioFormat" } });
  }
  const d = req.delivery;
  if (d) {
    const has = { s3: !!backend.delivery.s3, spool: !!backend.delivery.spool, email: !!backend.delivery.email, webhooks: backend.delivery.webhooks.length > 0 };
    const missing = (d.targets ?? []).filter((t) => !has[t]);
    if (d.email && !has.email) missing.push("email");
    if (d.spool && !has.spool) missing.push("spool");
    if (missing.length) {
      throw new MeetrecError("validation_failed", `Backend ${backendName} has no ${[...new Set(missing)].join(", ")} delivery target; configure it under backends.${backendName}.delivery first`, { details: { field: "delivery" } });
    }
  }
  return {
    url: req.url,
    ...(d ? { delivery: d } : {}),
    join,
    mode,
    ...(mode === "audio" ? { audioFormat: req.audioFormat ?? backend.audioFormat } : {}),
    browser: req.browser ?? "chromium",
    video,
    maxDurationSeconds,
    autoStop: resolveAutoStop(cfg, backend, req.autoStop),
    start: resolveStart(cfg, backend, req),
    tracks: resolveTracks(cfg, backend, req),
  };
}

/** When a recording begins: the request's `startWhen` / `startTimeoutSeconds`, then the backend's, then the server's. */
export function resolveStart(cfg: Config, backend: BackendConfig | undefined, req?: { startWhen?: StartWhen; startTimeoutSeconds?: number }): NonNullable<RecordingOptions["start"]> {
  return {
    when: req?.startWhen ?? backend?.startWhen ?? cfg.startWhen,
    timeoutSeconds: req?.startTimeoutSeconds ?? backend?.startTimeoutSeconds ?? cfg.startTimeoutSeconds,
  };
}

/** Whether a recording records each remote audio track on its own: the request's `tracks`, then the backend's, then the server's. */
export function resolveTracks(cfg: Config, backend: BackendConfig | undefined, req?: { tracks?: boolean }): boolean {
  return req?.tracks ?? backend?.tracks ?? cfg.tracks;
}

/** A recording's auto-stop: the server's `autoStop`, then the backend's, then the request's, field by field. */
export function resolveAutoStop(cfg: Config, backend: BackendConfig | undefined, req?: AutoStopSettings): NonNullable<RecordingOptions["autoStop"]> {
  const pick = <K extends keyof AutoStopSettings>(k: K) => req?.[k] ?? backend?.autoStop?.[k] ?? cfg.autoStop[k];
  const endedSelector = pick("endedSelector");
  return { emptySeconds: pick("emptySeconds") ?? 60, idleSeconds: pick("idleSeconds") ?? 0, ...(endedSelector ? { endedSelector } : {}) };
}
