/**
 * The configuration: one typed object, validated once at start (zod). Every key has a default
 * so that `meetrec serve` works with no file at all.
 *
 * Over 300 lines: it is the one schema of every key (its docs are the reference), kept whole so
 * cross-key rules (ceilings, unique keys) sit beside the keys they check.
 */
import { z } from "zod";
import { JoinSteps } from "../capture/index.js";
import { isAllowEntry } from "../egress/index.js";

/** The video settings' ranges (px, px, fps, kbit/s), without defaults. */
const videoField = {
  width: () => z.number().int().min(160).max(3840),
  height: () => z.number().int().min(120).max(2160),
  fps: () => z.number().int().min(1).max(60),
  bitrateKbps: () => z.number().int().min(100).max(50000),
};

/** Video capture settings: frame size in px, frame rate in fps, target bitrate in kbit/s. */
export const VideoSettings = z.strictObject({
  width: videoField.width().multipleOf(2).default(1280),
  height: videoField.height().multipleOf(2).default(720),
  fps: videoField.fps().default(30),
  bitrateKbps: videoField.bitrateKbps().default(2500),
});
export type VideoSettings = z.infer<typeof VideoSettings>;

/**
 * A backend's overrides of the video settings: only the keys it sets (no defaults, so the
 * global `video` shows through the others — zod's `.partial()` would fill them with defaults).
 */
export const VideoOverrides = z.strictObject({
  width: videoField.width().multipleOf(2).optional(),
  height: videoField.height().multipleOf(2).optional(),
  fps: videoField.fps().optional(),
  bitrateKbps: videoField.bitrateKbps().optional(),
});

/**
 * Ceilings of a recording's video settings (px, px, fps, kbit/s): a request (or a backend
 * default) above one is refused. What a recording costs to run grows with width × height × fps
 * (see `capacity.cost`), so these bound what one request may take from a worker.
 */
export const VideoLimits = z.strictObject({
  width: videoField.width().default(1920),
  height: videoField.height().default(1080),
  fps: videoField.fps().default(30),
  bitrateKbps: videoField.bitrateKbps().default(8000),
});
export type VideoLimits = z.infer<typeof VideoLimits>;

/** A backend's overrides of the global `videoLimits`: only the keys it sets. */
export const VideoLimitOverrides = z.strictObject({
  width: videoField.width().optional(),
  height: videoField.height().optional(),
  fps: videoField.fps().optional(),
  bitrateKbps: videoField.bitrateKbps().optional(),
});

/** Frame size of a Talk recording unless the backend's `video` says otherwise (what Talk's own recording server uses). */
export const TALK_VIDEO = { width: 1920, height: 1080 } as const;

/** One video setting above its ceiling. */
export interface VideoExcess {
  field: keyof VideoLimits;
  value: number;
  limit: number;
}

/** Units of the video settings, for messages. */
export const VIDEO_UNITS: Record<keyof VideoLimits, string> = { width: "px", height: "px", fps: "fps", bitrateKbps: "kbit/s" };

/** The settings of `video` above their ceiling in `limits`, in field order (empty when all fit). */
export function videoExcess(video: Partial<VideoSettings>, limits: VideoLimits): VideoExcess[] {
  return (Object.keys(VIDEO_UNITS) as (keyof VideoLimits)[])
    .filter((f) => video[f] !== undefined && video[f]! > limits[f])
    .map((field) => ({ field, value: video[field]!, limit: limits[field] }));
}

/** Events a webhook can subscribe to. */
export const WEBHOOK_EVENTS = ["recording.started", "recording.updated", "recording.completed", "recording.failed"] as const;

/** A webhook endpoint, signed per the Standard Webhooks specification. */
export const WebhookTarget = z.strictObject({
  /** Name used in delivery records (`webhook:{name}`); default: its position (`webhook:0`). */
  name: z.string().regex(/^[a-zA-Z0-9_-]+$/).optional(),
  url: z.url({ protocol: /^https?$/, error: "must be an http or https URL" }),
  /** Signing secret: `whsec_` + base64 of 24–64 random bytes (Standard Webhooks §"Signature scheme"). */
  secret: z.string().regex(/^whsec_[A-Za-z0-9+/]{32,}={0,2}$/, "must be whsec_ followed by base64 of at least 24 random bytes"),
  /** Events to send; default all. */
  events: z.array(z.enum(WEBHOOK_EVENTS)).optional(),
});
export type WebhookTarget = z.infer<typeof WebhookTarget>;

/**
 * What one recording becomes in a spool directory: `files` = the file (`{id}.mp4`) and a JSON
 * sidecar (`{id}.json`, renamed into place last); `pilos` = one uncompressed tar
 * `<recordId>-video.tar` in BigBlueButton's `video` format, which PILOS's `import:recordings`
 * picks up (needs `metadata.meetingId`; see `src/platforms/pilos/`).
 */
export const SPOOL_PACKAGES = ["files", "pilos"] as const;
export type SpoolPackageName = (typeof SPOOL_PACKAGES)[number];

/** A spool directory an importer (BigBlueButton / PILOS style) picks finished files up from. */
export const SpoolTarget = z.strictObject({
  /**
   * Local directory (created if missing), or an rsync-over-SSH destination `[user@]host:path`
   * (with an `rrsync`-restricted key, `path` is relative to the rrsync root).
   */
  path: z.string().min(1),
  /** Metadata key whose value names a sub-directory (tenant / instance); letters, digits, . _ - only. */
  subdirFromMetadata: z.string().optional(),
  /** Remote spool only: private key file, SSH port, known_hosts file (host keys are always checked). */
  sshKey: z.string().optional(),
  sshPort: z.number().int().min(1).max(65535).default(22),
  knownHostsFile: z.string().optional(),
  /**
   * What each recording becomes in the spool ({@link SPOOL_PACKAGES}); default `files`.
   * `pilos`: a PILOS instance's `storage/recordings-spool` (or the sub-directory it mounts),
   * and every recording needs `metadata.meetingId` (a PILOS meeting or room id).
   */
  package: z.enum(SPOOL_PACKAGES).default("files"),
});
export type SpoolTarget = z.infer<typeof SpoolTarget>;

/** Placeholders an S3 object key template may use (see `S3Target.key`). */
export const S3_KEY_PLACEHOLDER = /\{(id|file|ext|metadata\.[A-Za-z0-9_-]{1,100})\}/g;

/** Why an S3 object key template is unusable, or `undefined` when it is fine. */
export function s3KeyTemplateProblem(template: string): string | undefined {
  const unknown = template.replace(S3_KEY_PLACEHOLDER, "").match(/\{[^}]*\}?/);
  if (unknown) return `unknown placeholder ${unknown[0]}: use {id}, {file}, {ext} or {metadata.NAME}`;
  if (!/\{(id|metadata\.[^}]+)\}/.test(template)) return "must name the recording: include {id} or a {metadata.NAME}";
  if (!/\{(file|ext)\}/.test(template)) return "must end the key with the file's type: include {file} or {ext}";
  if (template.startsWith("/") || template.split("/").some((seg) => seg === "" || seg === "." || seg === "..")) return "must be a relative key without empty, . or .. segments";
  return undefined;
}

/** An S3-compatible bucket the final file is uploaded to; the API then links to it with a presigned URL. */
export const S3Target = z.strictObject({
  bucket: z.string().min(3),
  region: z.string().default("us-east-1"),
  /** Endpoint of an S3-compatible service (MinIO, Ceph, …); default: AWS. */
  endpoint: z.url().optional(),
  /** Path-style addressing (`endpoint/bucket/key`), needed by most S3-compatible services. */
  forcePathStyle: z.boolean().default(false),
  /** Key prefix, e.g. `tenant-a/`; objects go to `{prefix}` + the expanded `key`. */
  prefix: z.string().default(""),
  /**
   * Object key of the final file after `prefix`, a template: `{id}` (meetrec's recording id),
   * `{file}` (`recording.mp4`, `recording.m4a`, `recording.ogg`), `{ext}` (`mp4`, `m4a`, `ogg`),
   * `{metadata.NAME}` (the recording's metadata value `NAME`, which every recording of the
   * backend must then carry: letters, digits, `. _ -`, up to 128, checked at `POST`). Default
   * `recordings/{id}/{file}`; La Suite Meet: `recordings/{metadata.meetRecordingId}.{ext}`
   * (Meet's `RECORDING_OUTPUT_FOLDER`/`{recording id}.{mp4|ogg}`). Two recordings with the same
   * metadata value write the same object: the platform's ids must be unique.
   */
  key: z.string().min(1).max(1000).default("recordings/{id}/{file}").superRefine((k, ctx) => {
    const problem = s3KeyTemplateProblem(k);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  }),
  /** Credentials; default: the AWS SDK's chain (AWS_ACCESS_KEY_ID, …). */
  accessKeyId: z.string().optional(),
  secretAccessKey: z.string().optional(),
  /** Lifetime of the presigned download URL, s (SigV4 allows at most 7 days). */
  presignSeconds: z.number().int().min(60).max(604800).default(604800),
});
export type S3Target = z.infer<typeof S3Target>;

/**
 * A bucket that holds media segments while a recording runs: each init and media segment (and
 * the manifest) is uploaded as it closes, the local copy removed once the upload is
 * acknowledged. Keys: `{prefix}recordings/{id}/manifest.json` (cluster workers: `…/manifests/{lease epoch}.json`), `…/p{n}/init.mp4`, `…/p{n}/{seq}.m4s`.
 */
export const SegmentBucket = S3Target.omit({ presignSeconds: true, key: true });
export type SegmentBucket = z.infer<typeof SegmentBucket>;

/** E-mail to the recording's owner when it is ready (SMTP). */
export const EmailTarget = z.strictObject({
  smtp: z.strictObject({
    host: z.string().min(1),
    port: z.number().int().min(1).max(65535).default(587),
    /** TLS from the first byte (port 465); otherwise STARTTLS when offered. */
    secure: z.boolean().default(false),
    user: z.string().optional(),
    password: z.string().optional(),
  }),
  /** Sender, e.g. `meetrec <recordings@example.com>`. */
  from: z.string().min(3),
  /** Metadata key that holds the owner's address (`metadata.ownerEmail`). */
  toFromMetadata: z.string().default("ownerEmail"),
  /** Recipient when the metadata has none; without either, no e-mail is sent. */
  to: z.string().optional(),
});
export type EmailTarget = z.infer<typeof EmailTarget>;

/** Where a backend's finished recordings go. */
export const DeliveryTargets = z.strictObject({
  webhooks: z.array(WebhookTarget).default([]),
  spool: SpoolTarget.optional(),
  s3: S3Target.optional(),
  email: EmailTarget.optional(),
});
export type DeliveryTargets = z.infer<typeof DeliveryTargets>;

/** Secrets shorter than this many characters are warned about (`configWarnings`): 16 random characters are not guessed. */
export const WEAK_SECRET_CHARS = 16;

/** A Nextcloud Talk instance that may use this server through Talk's recording protocol. */
export const TalkBackend = z.strictObject({
  /** Talk's absolute base URL with webroot (`https://cloud.example.com/`), as Talk sends it in `Talk-Recording-Backend`. */
  url: z.url({ protocol: /^https?$/, error: "must be an http or https URL" }),
  /**
   * Shared secret entered in Talk's admin settings (HMAC-SHA256 key both ways). Talk accepts
   * any secret, so any non-empty one is taken; under 16 characters is warned about
   * ({@link configWarnings}), as it can be guessed.
   */
  secret: z.string().min(1, "must not be empty"),
  /** Largest request body Talk may send, bytes. */
  maxMessageSize: z.number().int().min(64).max(1 << 20).default(1024),
  /** Accept Talk's TLS certificate without verification (self-signed test instances only): for callbacks, uploads and the recorder's browser. */
  skipVerify: z.boolean().default(false),
  /**
   * The container recordings go to this Talk in: `mp4` (Talk since spreed PR #17635, 2026),
   * `mkv` (Matroska, made from the MP4 by stream copy; every Talk with recording takes it), or
   * `auto` (default): MP4, until this Talk refuses one (`file_mimetype`) — then the same
   * recording goes again at once as Matroska, and Matroska is remembered (in the store) for
   * this backend until a recording goes through as MP4 under `mp4`.
   */
  container: z.enum(["auto", "mp4", "mkv"]).default("auto"),
});
export type TalkBackend = z.infer<typeof TalkBackend>;

/**
 * A La Suite Meet instance this backend records for (`docs/integrations/lasuite-meet.md`;
 * shared/protocols/lasuite-meet.md). Meet starts and stops recordings through the native API
 * (its worker class, `integrations/lasuite-meet/`); the file goes to `delivery.s3` under Meet's
 * key, and Meet learns it is there from a storage event.
 */
export const LaSuiteMeetBackend = z.strictObject({
  /**
   * Post the storage event Meet's `MinioParser` reads once the file is in the bucket (the
   * note's §5, §8.4). Leave it out when the bucket (MinIO) notifies Meet itself: Meet saves a
   * recording once, so use one path only.
   */
  storageEvent: z.strictObject({
    /** Meet's storage hook, `https://meet.example.com/api/v1.0/recordings/storage-hook/`. */
    url: z.url({ protocol: /^https?$/, error: "must be an http or https URL" }),
    /** Meet's `RECORDING_STORAGE_EVENT_TOKEN`, sent as `Authorization: Bearer …`. */
    token: z.string().min(1),
  }).optional(),
});
export type LaSuiteMeetBackend = z.infer<typeof LaSuiteMeetBackend>;

/** Formats of audio-only recordings: AAC in M4A (`recording.m4a`), or Opus in Ogg (`recording.ogg`). */
export const AUDIO_FORMATS = ["aac", "opus"] as const;
export type AudioFormat = (typeof AUDIO_FORMATS)[number];

/** A platform allowed to use this server: by API key (native API), as a Talk instance, or both. */
/**
 * When a recording stops by itself because the meeting is over (seen by the recorder's media
 * watcher, see src/recorder/auto-stop.ts). Each field: the global `autoStop`, then the
 * backend's, then the request's.
 */
export const AutoStopSettings = z.strictObject({
  /** No participant's media for this long, s → `meeting_empty` (armed once a participant was seen); 0 = never. */
  emptySeconds: z.number().int().min(0).max(86400).optional(),
  /** Participants present but nobody audible and no camera on for this long, s → `meeting_idle`; 0 = never. */
  idleSeconds: z.number().int().min(0).max(86400).optional(),
  /** A CSS selector whose appearance on the page means the meeting has ended (e.g. `.meeting-ended`) → `meeting_ended`. */
  endedSelector: z.string().min(1).max(500).optional(),
});
export type AutoStopSettings = z.infer<typeof AutoStopSettings>;

/**
 * When a recording's first segment begins: `joined` — once the join steps are done; `media` —
 * once the page receives remote media (a participant's sound or picture, seen by the media
 * watcher, src/capture/watcher.ts), or `startTimeoutSeconds` after joining, whichever is first.
 */
export const START_WHEN = ["joined", "media"] as const;
export type StartWhen = (typeof START_WHEN)[number];

/** Limits of `startTimeoutSeconds`: how long a recording waits for remote media after joining, s. */
const StartTimeoutSeconds = z.number().int().min(1).max(600);

export const BackendConfig = z.strictObject({
  /** Bearer API key of this backend for the native API (≥ 16 characters); absent = no native API access. */
  apiKey: z.string().min(16, "must be at least 16 characters").optional(),
  /** This backend is a Nextcloud Talk instance (recording-server protocol at /api/v1). */
  talk: TalkBackend.optional(),
  /** This backend is a La Suite Meet instance (storage event after the S3 upload). */
  lasuiteMeet: LaSuiteMeetBackend.optional(),
  /**
   * Format of this backend's audio-only recordings unless the request names one: `aac` (AAC
   * in M4A, `audio/mp4`) or `opus` (Opus in Ogg, `audio/ogg`: what La Suite Meet's transcript
   * recordings and Talk's own audio recordings are). Encoded in that codec from the start, so
   * finalize only changes the container. Video recordings are always H.264 + AAC in MP4.
   */
  audioFormat: z.enum(AUDIO_FORMATS).default("aac"),
  /**
   * Origins (`https://meet.example.com`) the recorder's page may be on: the meeting URL, `goto`
   * steps, and every later top-level navigation (redirects, links, scripts) — enforced on the
   * browser's own traffic. Empty = any origin the egress policy allows (public addresses, plus
   * `egress.allow`). Origins named here are allowed even on private or loopback addresses.
   */
  allowedOrigins: z.array(z.url({ protocol: /^https?$/, error: "must be an http or https origin" })).default([]),
  /**
   * Origins the page may load from (frames, scripts, XHR/fetch, WebSockets, media) besides its
   * own: `public` (default) = any origin the egress policy allows. Origins named here are
   * allowed even on private or loopback addresses (e.g. a Janus or signaling server).
   */
  allowedRequestOrigins: z.array(z.union([z.literal("public"), z.url({ protocol: /^(https?|wss?)$/, error: "must be public or an http(s)/ws(s) origin" })])).default(["public"]),
  /** Overrides of the default video settings for this backend's recordings. */
  video: VideoOverrides.optional(),
  /** Overrides of the global `videoLimits` for this backend (per field; may be higher or lower). */
  videoLimits: VideoLimitOverrides.optional(),
  /** Longest recording this backend may ask for, in seconds. */
  maxDurationSeconds: z.number().int().positive().optional(),
  /** When this backend's recordings stop by themselves because the meeting is over (over the global `autoStop`). */
  autoStop: AutoStopSettings.optional(),
  /** When this backend's recordings begin (over the global `startWhen`). */
  startWhen: z.enum(START_WHEN).optional(),
  /** Record each remote audio track of this backend's recordings on its own too (over the global `tracks`). */
  tracks: z.boolean().optional(),
  /** How long this backend's recordings wait for remote media, s (over the global `startTimeoutSeconds`). */
  startTimeoutSeconds: StartTimeoutSeconds.optional(),
  /** Delivery targets of this backend's recordings. */
  delivery: DeliveryTargets.prefault({}),
  /** Where this backend's recordings are kept (segments and files; created if missing); default: the global dataDir. The database stays in the global dataDir. */
  dataDir: z.string().optional(),
  /** Days after its end a recording's media (disk and bucket) is removed; absent = kept. */
  retentionDays: z.number().positive().optional(),
  /** This backend's segment bucket (overrides the global `segments.s3`). */
  segments: z.strictObject({ s3: SegmentBucket.optional() }).optional(),
});
export type BackendConfig = z.infer<typeof BackendConfig>;

export const CaptureConfig = z.strictObject({
  chromiumPath: z.string().default("/usr/bin/chromium"),
  firefoxPath: z.string().default("/usr/bin/firefox-esr"),
  /**
   * Extra Chromium switches (`--name` or `--name=value`), after meetrec's own (capture/browser.ts).
   * Switches that would take the browser past the egress policy or meetrec's control (proxy,
   * remote debugging, profile directory, sandbox) are refused.
   */
  chromiumArgs: z.array(z.string()
    .regex(/^--[a-z0-9][a-z0-9-]*(=.*)?$/, "a Chromium switch: --name or --name=value")
    .refine((a) => !/^--(proxy-|no-proxy-server|remote-debugging|user-data-dir|no-sandbox|disable-web-security|host-resolver-rules)/.test(a),
      "meetrec sets this switch itself (the egress proxy, its own control of the browser and profile): it cannot be changed"))
    .max(50).default([]),
  ffmpegPath: z.string().default("ffmpeg"),
  ffprobePath: z.string().default("ffprobe"),
  xvfbPath: z.string().default("Xvfb"),
  pulseaudioPath: z.string().default("pulseaudio"),
  /** Runtime directory of the machine's one PulseAudio daemon used by meetrec (socket lives here). */
  pulseDir: z.string().optional(),
  /** Media segment duration in seconds (each starts on a keyframe). */
  segmentSeconds: z.number().min(1).max(10).default(2),
  /**
   * Video: length of each encoder run's first media segment, s (absent: `segmentSeconds`). A
   * short first segment is durable that soon after the picture starts — with a warm stack
   * (`warmBrowsers`) and 0.5 s, a one-click page's first segment is durable ~1.6 s after the
   * request instead of ~3 s (docs/benchmarks.md). The first two segments' frame counts are then
   * counted but not judged (`frames_degraded`).
   */
  firstSegmentSeconds: z.number().min(0.25).max(10).optional(),
  /** How often a dead encoder is restarted in a new period before the recording fails. */
  maxEncoderRestarts: z.number().int().min(0).max(20).default(3),
  /** How often a crashed browser is relaunched and rejoined before the recording fails. */
  maxBrowserRestarts: z.number().int().min(0).max(20).default(3),
  /**
   * Warm capture stacks kept per machine: display, sink and Chromium on `about:blank`, started
   * before a recording asks, at the default frame size (`video`). A recording or a taken-over
   * recording that fits one (Chromium, that frame size, no `acceptInsecureCerts`) only opens its
   * page and joins; each stack serves one recording and the pool refills in the background. Never
   * more than the CPU budget left has room for (at the learned cost of such a recording). Each
   * waiting stack holds ~150–250 MiB. Default 0: none.
   */
  warmBrowsers: z.number().int().min(0).max(16).default(0),
  /** Timeout of the initial page load, ms. */
  pageLoadTimeoutMs: z.number().int().positive().default(30000),
  /** Default timeout of one join step, ms. */
  joinStepTimeoutMs: z.number().int().positive().default(30000),
  /**
   * libx264 preset (speed/CPU trade-off). Default `ultrafast` with {@link x264Params} `cabac=1`:
   * measured on the same pictures (docs/benchmarks.md, `make bench --only settings`), 0.69–0.80×
   * the CPU of `veryfast`, files no larger on a meeting page, SSIM 0.9999 on flat content and
   * within 0.0007 of `veryfast` on high motion (docs/decisions.md "The encoder's preset").
   */
  x264Preset: z.enum(["ultrafast", "superfast", "veryfast", "faster", "fast", "medium"]).default("ultrafast"),
  /**
   * x264 options on top of the preset (ffmpeg's `-x264-params`): `key=value` pairs joined by
   * `:`, empty for the preset alone. The default turns CABAC back on, which `ultrafast` turns
   * off: the same SSIM at half the bitrate on a meeting page (913 → 453 kbit/s at 1080p) for no
   * measurable CPU. Applied after the preset and `-tune zerolatency`.
   */
  x264Params: z.string().regex(/^([a-z0-9_-]+=[^:=\s]+(:[a-z0-9_-]+=[^:=\s]+)*)?$/, "key=value pairs joined by ':' (x264 option names), e.g. cabac=1:deblock=1").default("cabac=1"),
  /**
   * Delay added to the sound, ms, to cancel the capture chain's own bias: the pulse monitor's
   * timestamps run ~70 ms ahead of x11grab's (measured with a white-screen + beep rig and with
   * the sync page, docs/benchmarks.md and docs/decisions.md). Raise it if recordings sound
   * early, lower it if late.
   */
  audioDelayMs: z.number().int().min(-1000).max(1000).default(70),
  /** AAC bitrate, kbit/s. */
  audioBitrateKbps: z.number().int().min(32).max(512).default(128),
  /**
   * Watchdog: an encoder that closes no segment, or a page that answers no probe, for this many
   * segment durations is treated as hung (the encoder is restarted in a new period; the browser
   * is relaunched and rejoins).
   */
  stallSegments: z.number().int().min(2).max(30).default(3),
  /**
   * Disk guard: bytes that must stay free on a recording's data filesystem beyond what
   * finalizing needs (a copy of the media so far). Below that the recording is stopped and
   * finalized, ending `completed` with `endReason: "disk_full"`.
   */
  diskReserveBytes: z.number().int().min(0).default(256 * 1024 * 1024),
  /**
   * The media watcher in every page (capture/watcher.ts). Off: the page runs exactly as
   * served, and the recorder sees nothing of the meeting — no participants, recordings begin on
   * joining whatever `startWhen` says, `autoStop` ends them only by the page leaving the
   * meeting, and nobody is heard speaking. For a page the wrapper would break, and to measure
   * its cost (`make bench`).
   */
  mediaWatcher: z.boolean().default(true),
});
export type CaptureConfig = z.infer<typeof CaptureConfig>;

export const Config = z.strictObject({
  /** `host:port` or `unix:/path/to.sock`. */
  listen: z.string().default("127.0.0.1:8080"),
  /** Where the SQLite store and the segment store live. */
  dataDir: z.string().default("./data"),
  /**
   * Hard cap on recordings running at once on this machine; more wait `queued`. Within it,
   * `capacity` decides.
   */
  concurrency: z.number().int().min(1).max(256).default(16),
  /**
   * Admission by capacity: a recording starts only when its cost fits in the CPU budget left
   * and the machine has the free memory, and free disk for twice `capture.diskReserveBytes`.
   */
  capacity: z.strictObject({
    /** Cores this worker may use for recordings; default: all of the machine's. */
    cpuBudget: z.number().positive().optional(),
    /**
     * Cores one recording takes (Xvfb + browser + encoder; docs/benchmarks.md: ~0.5 at 720p plus
     * the meeting's decoding). `video` is the cost of a 1280×720@30 recording; another video
     * recording costs that × (width · height · fps) / (1280 · 720 · 30), never below 0.5× it.
     * `audio` is the cost of any audio-only recording.
     */
    cost: z.strictObject({
      video: z.number().positive().default(1),
      audio: z.number().positive().default(0.35),
    }).prefault({}),
    /**
     * Learn `cost` from what the recordings running here measure (their display, browser and
     * encoder processes, every 5 s; per kind, scaled by pixels × fps as above): `cost` is then
     * only the starting point. false: the costs stay as configured.
     */
    learnCost: z.boolean().default(true),
    /** Free memory (MemAvailable, bytes) below which nothing new starts. */
    minFreeMemoryBytes: z.number().int().min(0).default(512 * 1024 * 1024),
  }).prefault({}),
  logLevel: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]).default("info"),
  /** Public base URL of the API (for `file.url`); default: derived from the request. */
  publicUrl: z.string().url().optional(),
  video: VideoSettings.prefault({}),
  /**
   * Ceilings of every recording's video settings — frame size (px), frame rate (fps), bitrate
   * (kbit/s); default 1920×1080, 30 fps, 8000 kbit/s. A request above one is refused (422), and
   * so is a configuration whose `video` defaults (global, or a backend's) are above its ceilings.
   * Each backend may override them (`backends.{name}.videoLimits`).
   */
  videoLimits: VideoLimits.prefault({}),
  /** Default and ceiling for `maxDurationSeconds`. */
  maxDurationSeconds: z.number().int().positive().default(4 * 3600),
  /** When recordings stop by themselves because the meeting is over; defaults: empty after 60 s, never idle. */
  /** When recordings begin: `media` (default) — when remote media plays, at most `startTimeoutSeconds` after joining; `joined` — right after the join steps. */
  startWhen: z.enum(START_WHEN).default("media"),
  /** With `startWhen: media`: the longest wait for remote media after joining, s (default 30); then the recording begins anyway. */
  startTimeoutSeconds: StartTimeoutSeconds.default(30),
  /**
   * Per-participant audio: besides the mixed file, each remote audio track the recorder's page
   * receives is recorded on its own (Opus, stream copy of what the browser's MediaRecorder
   * writes) and delivered as `{file}.track-{n}.ogg` with its offset in the file (default false;
   * a backend's `tracks`, then the request's, override it). Needs `capture.mediaWatcher`.
   */
  tracks: z.boolean().default(false),
  autoStop: AutoStopSettings.prefault({}).transform((a) => ({ emptySeconds: a.emptySeconds ?? 60, idleSeconds: a.idleSeconds ?? 0, ...(a.endedSelector ? { endedSelector: a.endedSelector } : {}) })),
  capture: CaptureConfig.prefault({}),
  /** Where media segments go while recording: always the local data directory first, then optionally a bucket. */
  segments: z.strictObject({
    /** Mirror segments to this bucket as they close (see SegmentBucket); needed for failover between machines. */
    s3: SegmentBucket.optional(),
    /** At stop, how long to wait for segments still queued for the bucket before finalizing from the local copies, ms. */
    flushTimeoutMs: z.number().int().min(0).default(60000),
  }).prefault({}),
  delivery: z.strictObject({
    /** Retry schedule: first retry after `initialDelayMs`, each next one `factor` times later, at most `maxDelayMs` (±20 % jitter), until `giveUpAfterSeconds`. */
    retry: z.strictObject({
      initialDelayMs: z.number().int().min(10).default(5000),
      maxDelayMs: z.number().int().min(10).default(3600_000),
      factor: z.number().min(1).max(10).default(2),
    }).prefault({}),
    /**
     * A delivery still failing this long after its first attempt (or after the last `redeliver`)
     * is given up, s: its status becomes `failed` and a `delivery_given_up` event names the last
     * error. A `delivering` recording whose file delivery was given up ends `failed`
     * (`delivery_failed`); the file is kept and `redeliver` tries again. Default 3 days: a
     * receiver down over a long weekend still gets the file.
     */
    giveUpAfterSeconds: z.number().positive().default(3 * 86400),
    /** How often due deliveries are looked for, ms. */
    pollIntervalMs: z.number().int().min(10).max(60000).default(500),
    /** Time limit of one attempt (one webhook request), ms. */
    attemptTimeoutMs: z.number().int().min(100).default(30000),
  }).prefault({}),
  /** Nextcloud Talk settings shared by all Talk backends. */
  /** How often expired recordings are looked for, ms. */
  retentionSweepIntervalMs: z.number().int().min(1000).default(3600_000),
  talk: z.strictObject({
    /** Accept any Talk instance that knows `secret` (development only). */
    allowAll: z.boolean().default(false),
    /** Common secret used with `allowAll` (any non-empty one, as Talk takes any; under 16 characters is warned about). */
    secret: z.string().min(1, "must not be empty").optional(),
    /**
     * How long an accepted `Talk-Recording-Random` is remembered per backend, s: a request
     * that carries one again within this window is refused (403) as a replay. Talk signs only
     * `random ‖ body` (not the conversation token in the path, and no timestamp), so the window
     * is what bounds replays; at least 15 minutes (docs/decisions.md "Nextcloud Talk").
     */
    replayWindowSeconds: z.number().int().min(900, "must be at least 900 (15 minutes)").max(7 * 86400).default(900),
    /** Signaling servers (HPB) and their internal secrets, for joining calls. */
    signaling: z.strictObject({
      internalSecret: z.string().optional(),
      servers: z.array(z.strictObject({ url: z.url(), internalSecret: z.string().min(1) })).default([]),
    }).prefault({}),
  }).prefault({}).refine((t) => !t.allowAll || t.secret, { message: "allowAll needs talk.secret (the common secret)", path: ["secret"] }),
  /**
   * The OpenVidu 2 recording container (`meetrec openvidu-recorder`, the entrypoint of an image
   * that replaces `openvidu/openvidu-recording`; shared/protocols/openvidu-recording.md). What
   * OpenVidu passes (layout URL, resolution, frame rate, id, name) comes from its environment;
   * these keys add what OpenVidu has no setting for. Its recordings belong to the backend
   * `openvidu` (`backends.openvidu` may set `video.bitrateKbps`, `videoLimits`,
   * `allowedRequestOrigins`, `segments.s3`).
   */
  openvidu: z.strictObject({
    /**
     * The recordings folder: openvidu-server binds its `OPENVIDU_RECORDING_PATH` here and reads
     * `{id}/{name}.mp4`, `{id}/{id}.info`, `{id}/.recording.{id}` from it. Default `/recordings`
     * (the container's mount point); any directory when run outside a container. Its `.env`
     * is read for `MEETREC_*` settings (see the README); this key itself cannot be set there.
     */
    recordingsDir: z.string().min(1).default("/recordings"),
    /** Join steps run after the layout page has loaded (OpenVidu's own layouts need none). */
    join: JoinSteps.default([]),
  }).prefault({}),
  /**
   * Cluster mode (`serve --role api`, `meetrec worker`): jobs, heartbeats and stop signals on
   * Redis (BullMQ), the store on PostgreSQL, media in `segments.s3`. Embedded mode needs none.
   */
  cluster: z.strictObject({
    /** `redis://[:password@]host:6379[/db]`. */
    redisUrl: z.string().regex(/^rediss?:\/\//, "must be a redis:// or rediss:// URL").optional(),
    /** `postgres://user:password@host:5432/db`. */
    postgresUrl: z.string().regex(/^postgres(ql)?:\/\//, "must be a postgres:// URL").optional(),
    /** This worker's name (metrics label, lease holder); default: host name + pid. */
    workerName: z.string().regex(/^[a-zA-Z0-9_.-]+$/).optional(),
    /** BullMQ queue name (several installations can share one Redis). */
    queue: z.string().regex(/^[a-zA-Z0-9_-]+$/).default("meetrec"),
    /**
     * Job lock lifetime, ms: a worker renews it every half of it (its heartbeat); a worker that
     * stopped renewing loses its recordings after at most this plus `stalledIntervalMs`.
     */
    lockDurationMs: z.number().int().min(1000).max(300000).default(4000),
    /** How often workers look for stalled jobs (lost locks), ms. */
    stalledIntervalMs: z.number().int().min(500).max(300000).default(2000),
    /** How often a worker checks that it still holds each recording and whether a stop was asked, ms. */
    leaseCheckMs: z.number().int().min(200).max(60000).default(1000),
    /**
     * How often the leading API process looks for unfinished recordings that no job carries
     * (Redis lost it, or a worker's run failed), ms; one is queued again after two such passes.
     */
    reconcileIntervalMs: z.number().int().min(500).max(600000).default(5000),
  }).prefault({}),
  /**
   * Egress policy for the recorder's browser and meetrec's own requests (Talk, webhooks): after
   * DNS resolution, loopback, link-local, cloud-metadata, unspecified, multicast, reserved and
   * private addresses are refused, except origins a backend names and what `allow` lists.
   */
  egress: z.strictObject({
    /** CIDRs (`10.0.0.0/8`), addresses, host names (`meet.internal`) or `*.suffix` wildcards the policy lets through. */
    allow: z.array(z.string().refine(isAllowEntry, "must be a CIDR, an IP address, a host name or *.suffix")).default([]),
  }).prefault({}),
  /** Backends by name. Each `apiKey` must be unique: the key is what identifies the backend. */
  backends: z.record(z.string().regex(/^[a-zA-Z0-9_-]+$/, "backend names are letters, digits, - and _"), BackendConfig).default({})
    .superRefine((backends, ctx) => {
      const owner = new Map<string, string>();
      for (const [name, b] of Object.entries(backends)) {
        if (!b.apiKey) continue;
        const first = owner.get(b.apiKey);
        if (first === undefined) { owner.set(b.apiKey, name); continue; }
        // Never the key itself: config check prints these messages.
        ctx.addIssue({ code: "custom", path: [name, "apiKey"], message: `backends ${first} and ${name} have the same apiKey; give each backend its own key (the key identifies the backend)` });
      }
    }),
}).superRefine((cfg, ctx) => {
  // The video defaults each backend's recordings start from must fit that backend's ceilings.
  const check = (video: Partial<VideoSettings>, limits: VideoLimits, path: (field: string) => (string | number)[], limitKey: (field: string) => string, note = "") => {
    for (const e of videoExcess(video, limits)) {
      ctx.addIssue({ code: "custom", path: path(e.field), message: `${e.value} ${VIDEO_UNITS[e.field]}${note} is above the ceiling ${limitKey(e.field)} = ${e.limit}; lower the setting or raise the ceiling` });
    }
  };
  check(cfg.video, cfg.videoLimits, (f) => ["video", f], (f) => `videoLimits.${f}`);
  for (const [name, b] of Object.entries(cfg.backends)) {
    const limits = { ...cfg.videoLimits, ...b.videoLimits };
    const limitKey = (f: string) => (b.videoLimits && f in b.videoLimits ? `backends.${name}.videoLimits.${f}` : `videoLimits.${f}`);
    // A Talk backend's recordings use Talk's frame size unless its own `video` sets one.
    const video = { ...cfg.video, ...(b.talk ? TALK_VIDEO : {}), ...b.video };
    const fromTalk = (f: string) => !!b.talk && f in TALK_VIDEO && !(b.video && f in b.video);
    for (const e of videoExcess(video, limits)) {
      const own = (b.video && e.field in b.video) || (b.videoLimits && e.field in b.videoLimits);
      if (!own && !fromTalk(e.field)) continue; // the global default over the global ceiling: reported once, above
      const note = fromTalk(e.field) ? " (Talk's default frame size; set this key to record smaller)" : "";
      ctx.addIssue({ code: "custom", path: ["backends", name, "video", e.field], message: `${e.value} ${VIDEO_UNITS[e.field]}${note} is above the ceiling ${limitKey(e.field)} = ${e.limit}; lower the setting or raise the ceiling` });
    }
  }
  for (const [name, b] of Object.entries(cfg.backends)) {
    // Talk's upload (platforms/talk/client.ts) sends every file as MP4; an Ogg would arrive mislabelled.
    if (b.talk && b.audioFormat === "opus") {
      ctx.addIssue({ code: "custom", path: ["backends", name, "audioFormat"], message: "opus is not yet uploaded to Nextcloud Talk (its upload sends MP4 only); use aac for a Talk backend" });
    }
    if (b.lasuiteMeet?.storageEvent && !b.delivery.s3) {
      ctx.addIssue({ code: "custom", path: ["backends", name, "lasuiteMeet", "storageEvent"], message: "the storage event names the object delivery.s3 uploads: configure backends." + name + ".delivery.s3 (Meet's bucket, key recordings/{metadata.meetRecordingId}.{ext})" });
    } else if (b.lasuiteMeet?.storageEvent && b.delivery.s3 && !/(^|\/)\{(id|metadata\.[^}]+)\}\.\{ext\}$/.test(b.delivery.s3.prefix + b.delivery.s3.key)) {
      // Meet's MinioParser reads the recording id from `…{RECORDING_OUTPUT_FOLDER}/{uuid}.{ext}` (parsers.py).
      ctx.addIssue({ code: "custom", path: ["backends", name, "delivery", "s3", "key"], message: "La Suite Meet finds its recording by a key ending in {RECORDING_OUTPUT_FOLDER}/{recording id}.{ext}: use recordings/{metadata.meetRecordingId}.{ext}" });
    }
  }
  if (cfg.talk.allowAll) check(TALK_VIDEO, cfg.videoLimits, (f) => ["videoLimits", f], (f) => `videoLimits.${f}`, " (talk.allowAll: Talk instances record at Talk's 1920×1080)");
});
export type Config = z.infer<typeof Config>;
