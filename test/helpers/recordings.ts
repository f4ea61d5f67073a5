/**
 * Recordings with a real (ffmpeg-made) file, put straight into an App's store — for tests of
 * what happens after recording (API downloads, deliveries, retention) without recording a meeting.
 */
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import type { EmbeddedHost } from "../../src/hosts/index.js";
import type { RecordingFile, RecordingOptions } from "../../src/store/index.js";

/** What the recording was asked for: its metadata and per-recording delivery choices. */
export interface RecordingSetup {
  metadata?: Record<string, unknown>;
  delivery?: RecordingOptions["delivery"];
}

/** A recording stopped and finalized — up to `finalizing`, with its 3 s, 320×240 file made. */
async function finalizing(app: EmbeddedHost, backend: string, setup: RecordingSetup): Promise<{ id: string; file: string; meta: RecordingFile }> {
  const rec = await app.store.create({
    id: randomUUID(), backend, metadata: setup.metadata ?? {},
    options: { url: "https://meet.example.com/r", join: [], mode: "video", browser: "chromium", video: { width: 320, height: 240, fps: 10, bitrateKbps: 300 }, maxDurationSeconds: 60, ...(setup.delivery ? { delivery: setup.delivery } : {}) },
  });
  const recDir = app.files.dir(rec);
  mkdirSync(recDir, { recursive: true });
  const file = join(recDir, "recording.mp4");
  execFileSync("ffmpeg", ["-v", "error", "-f", "lavfi", "-i", "testsrc2=s=320x240:r=10:d=3", "-c:v", "libx264", "-preset", "ultrafast", "-movflags", "+faststart", file]);
  for (const s of ["starting", "recording", "stopping", "finalizing"] as const) await app.store.transition(rec.id, s);
  return { id: rec.id, file, meta: { name: "recording.mp4", bytes: statSync(file).size, durationSeconds: 3, streams: ["video h264 320x240 10fps"] } };
}

/** A `completed` recording (no delivery is made: it goes straight to `completed`). */
export async function completedRecording(app: EmbeddedHost, backend: string, setup: RecordingSetup = {}): Promise<{ id: string; file: string; bytes: Buffer }> {
  const { id, file, meta } = await finalizing(app, backend, setup);
  await app.store.transition(id, "completed", { endReason: "stopped", file: meta });
  return { id, file, bytes: readFileSync(file) };
}

/**
 * A recording just finalized as a worker leaves it: `delivering` when its backend has file
 * targets for it (the App's delivery loop starts on them at once), else `completed`.
 */
export async function finishedRecording(app: EmbeddedHost, backend: string, setup: RecordingSetup = {}): Promise<{ id: string; file: string; bytes: Buffer }> {
  const { id, file, meta } = await finalizing(app, backend, setup);
  const rec = (await app.store.get(id))!;
  await app.store.transition(id, app.targets.fileTargets(rec).length > 0 ? "delivering" : "completed", { reason: "stopped", endReason: "stopped", file: meta });
  return { id, file, bytes: readFileSync(file) };
}
