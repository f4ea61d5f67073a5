/**
 * A completed recording with a real (ffmpeg-made) file, put straight into an App's store —
 * for tests of what happens after recording (API downloads, retention).
 */
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import type { App } from "../../src/app/index.js";

export async function completedRecording(app: App, backend: string, metadata: Record<string, unknown> = {}): Promise<{ id: string; file: string; bytes: Buffer }> {
  const rec = await app.store.create({
    id: randomUUID(), backend, metadata,
    options: { url: "https://meet.example.com/r", join: [], mode: "video", browser: "chromium", video: { width: 320, height: 240, fps: 10, bitrateKbps: 300 }, maxDurationSeconds: 60 },
  });
  const recDir = app.mediaDir(rec);
  mkdirSync(recDir, { recursive: true });
  const file = join(recDir, "recording.mp4");
  execFileSync("ffmpeg", ["-v", "error", "-f", "lavfi", "-i", "testsrc2=s=320x240:r=10:d=3", "-c:v", "libx264", "-preset", "ultrafast", "-movflags", "+faststart", file]);
  for (const s of ["starting", "recording", "stopping", "finalizing"] as const) await app.store.transition(rec.id, s);
  await app.store.transition(rec.id, "completed", { endReason: "stopped", file: { name: "recording.mp4", bytes: statSync(file).size, durationSeconds: 3, streams: ["video h264 320x240 10fps"] } });
  return { id: rec.id, file, bytes: readFileSync(file) };
}
