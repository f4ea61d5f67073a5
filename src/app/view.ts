/**
 * The recording as the API and the webhooks show it.
 */
import type { Recording, RecordingEvent } from "../store/index.js";

/** See the `RecordingView` schema in the API for field meanings. */
export interface RecordingViewData {
  id: string;
  status: Recording["status"];
  backend: string;
  url: string;
  mode: "video" | "audio";
  browser: "chromium" | "firefox";
  video: Recording["options"]["video"];
  maxDurationSeconds: number;
  metadata: Record<string, unknown>;
  endReason: string | null;
  error: { code: string; message: string } | null;
  createdAt: string;
  startedAt: string | null;
  endedAt: string | null;
  updatedAt: string;
  capturedSeconds: number;
  segmentCount: number;
  bytes: number;
  periods: number;
  file: { name: string; bytes: number; durationSeconds: number; streams: string[]; url: string } | null;
  worker: string | null;
  events?: { at: string; type: string; status: Recording["status"] | null; reason: string | null; message: string | null; data: Record<string, unknown> | null }[];
}

/** Builds the view; `base` is the absolute URL prefix of the API (`http://host:port`). */
export function toView(rec: Recording, base: string, events?: RecordingEvent[]): RecordingViewData {
  const o = rec.options;
  return {
    id: rec.id, status: rec.status, backend: rec.backend, url: o.url, mode: o.mode, browser: o.browser, video: o.video,
    maxDurationSeconds: o.maxDurationSeconds, metadata: rec.metadata, endReason: rec.endReason, error: rec.error,
    createdAt: rec.createdAt, startedAt: rec.startedAt, endedAt: rec.endedAt, updatedAt: rec.updatedAt,
    capturedSeconds: Math.round(rec.capturedMs) / 1000, segmentCount: rec.segmentCount, bytes: rec.bytes, periods: rec.periodCount,
    file: rec.file ? { ...rec.file, url: `${base}/v1/recordings/${rec.id}/file` } : null,
    worker: rec.worker,
    ...(events ? { events: events.map((e) => ({ at: e.at, type: e.type, status: e.status, reason: e.reason, message: e.message, data: e.data })) } : {}),
  };
}
