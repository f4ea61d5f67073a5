/**
 * The configuration: one typed object, validated once at start (zod). Every key has a default
 * so that `meetrec serve` works with no file at all.
 */
import { z } from "zod";

/** Video capture settings: frame size in px, frame rate in fps, target bitrate in kbit/s. */
export const VideoSettings = z.strictObject({
  width: z.number().int().min(160).max(3840).multipleOf(2).default(1280),
  height: z.number().int().min(120).max(2160).multipleOf(2).default(720),
  fps: z.number().int().min(1).max(60).default(30),
  bitrateKbps: z.number().int().min(100).max(50000).default(2500),
});
export type VideoSettings = z.infer<typeof VideoSettings>;

/** A platform allowed to use this server. */
export const BackendConfig = z.strictObject({
  /** Bearer API key of this backend (≥ 16 characters). */
  apiKey: z.string().min(16, "must be at least 16 characters"),
  /**
   * Origins (`https://meet.example.com`) meeting URLs may be on; empty = any origin
   * (meetrec then warns at start: a key holder can make the recorder open any page).
   */
  allowedOrigins: z.array(z.string().url()).default([]),
  /** Overrides of the default video settings for this backend's recordings. */
  video: VideoSettings.partial().optional(),
  /** Longest recording this backend may ask for, in seconds. */
  maxDurationSeconds: z.number().int().positive().optional(),
});
export type BackendConfig = z.infer<typeof BackendConfig>;

export const CaptureConfig = z.strictObject({
  chromiumPath: z.string().default("/usr/bin/chromium"),
  firefoxPath: z.string().default("/usr/bin/firefox-esr"),
  ffmpegPath: z.string().default("ffmpeg"),
  ffprobePath: z.string().default("ffprobe"),
  xvfbPath: z.string().default("Xvfb"),
  pulseaudioPath: z.string().default("pulseaudio"),
  /** Runtime directory of the machine's one PulseAudio daemon used by meetrec (socket lives here). */
  pulseDir: z.string().optional(),
  /** Media segment duration in seconds (each starts on a keyframe). */
  segmentSeconds: z.number().min(1).max(10).default(2),
  /** How often a dead encoder is restarted in a new period before the recording fails. */
  maxEncoderRestarts: z.number().int().min(0).max(20).default(3),
  /** Timeout of the initial page load, ms. */
  pageLoadTimeoutMs: z.number().int().positive().default(30000),
  /** Default timeout of one join step, ms. */
  joinStepTimeoutMs: z.number().int().positive().default(30000),
  /** libx264 preset (speed/CPU trade-off). */
  x264Preset: z.enum(["ultrafast", "superfast", "veryfast", "faster", "fast", "medium"]).default("veryfast"),
  /**
   * Delay added to the sound, ms, to cancel the capture chain's own bias: the pulse monitor's
   * timestamps run ~70 ms ahead of x11grab's (measured with a white-screen + beep rig,
   * docs/benchmarks.md). Raise it if recordings sound early, lower it if late.
   */
  audioDelayMs: z.number().int().min(-1000).max(1000).default(70),
  /** AAC bitrate, kbit/s. */
  audioBitrateKbps: z.number().int().min(32).max(512).default(128),
});
export type CaptureConfig = z.infer<typeof CaptureConfig>;

export const Config = z.strictObject({
  /** `host:port` or `unix:/path/to.sock`. */
  listen: z.string().default("127.0.0.1:8080"),
  /** Where the SQLite store and the segment store live. */
  dataDir: z.string().default("./data"),
  /** Recordings that may run at once on this machine; more wait `queued`. */
  concurrency: z.number().int().min(1).max(64).default(2),
  logLevel: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]).default("info"),
  /** Public base URL of the API (for `file.url`); default: derived from the request. */
  publicUrl: z.string().url().optional(),
  video: VideoSettings.prefault({}),
  /** Default and ceiling for `maxDurationSeconds`. */
  maxDurationSeconds: z.number().int().positive().default(4 * 3600),
  capture: CaptureConfig.prefault({}),
  backends: z.record(z.string().regex(/^[a-zA-Z0-9_-]+$/, "backend names are letters, digits, - and _"), BackendConfig).default({}),
});
export type Config = z.infer<typeof Config>;
