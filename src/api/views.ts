/**
 * The recording as the API shows it.
 */
import { z } from "zod";
import type { Recording, RecordingEvent } from "../store/index.js";

const Status = z.enum(["queued", "starting", "recording", "stopping", "finalizing", "delivering", "completed", "failed", "aborted"]);

export const EventView = z.object({
  at: z.string(),
  type: z.string(),
  status: Status.nullable(),
  reason: z.string().nullable(),
  message: z.string().nullable(),
  data: z.record(z.string(), z.unknown()).nullable(),
});

export const RecordingView = z.object({
  id: z.string(),
  status: Status,
  backend: z.string(),
  url: z.string(),
  mode: z.enum(["video", "audio"]),
  browser: z.enum(["chromium", "firefox"]),
  video: z.object({ width: z.number(), height: z.number(), fps: z.number(), bitrateKbps: z.number() }),
  maxDurationSeconds: z.number(),
  metadata: z.record(z.string(), z.unknown()),
  endReason: z.string().nullable().describe("stopped | limit_reached | meeting_ended | failed | deleted"),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
  createdAt: z.string(),
  startedAt: z.string().nullable(),
  endedAt: z.string().nullable(),
  updatedAt: z.string(),
  capturedSeconds: z.number().describe("Media durably stored so far, s"),
  segmentCount: z.number(),
  bytes: z.number().describe("Bytes of stored segments"),
  periods: z.number().describe("Encoder runs so far; more than 1 after a restart"),
  file: z.object({
    name: z.string(), bytes: z.number(), durationSeconds: z.number(), streams: z.array(z.string()), url: z.string(),
  }).nullable(),
  events: z.array(EventView).optional(),
});
export type RecordingView = z.infer<typeof RecordingView>;

/** Builds the view; `base` is the absolute URL prefix of the API (`http://host:port`). */
export function toView(rec: Recording, base: string, events?: RecordingEvent[]): RecordingView {
  const o = rec.options;
  return {
    id: rec.id, status: rec.status, backend: rec.backend, url: o.url, mode: o.mode, browser: o.browser, video: o.video,
    maxDurationSeconds: o.maxDurationSeconds, metadata: rec.metadata, endReason: rec.endReason, error: rec.error,
    createdAt: rec.createdAt, startedAt: rec.startedAt, endedAt: rec.endedAt, updatedAt: rec.updatedAt,
    capturedSeconds: Math.round(rec.capturedMs) / 1000, segmentCount: rec.segmentCount, bytes: rec.bytes, periods: rec.periodCount,
    file: rec.file ? { ...rec.file, url: `${base}/v1/recordings/${rec.id}/file` } : null,
    ...(events ? { events: events.map((e) => ({ at: e.at, type: e.type, status: e.status, reason: e.reason, message: e.message, data: e.data })) } : {}),
  };
}
