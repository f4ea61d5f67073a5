/**
 * End to end: a real Janus VideoRoom meeting with two fake publishers (magenta + 440 Hz,
 * yellow + 1000 Hz), recorded through the API by `meetrec serve` running in the meeting's
 * network namespace. Every test checks the file itself; the first two also what the recorder's
 * media watcher reports of the meeting while it records (participants, media flowing).
 */
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startMeeting, type Meeting } from "../../dev/meeting.js";
import { checkMeeting } from "../../dev/media-check.js";
import { expectCaptureProcesses, recordingProcessesGone } from "../helpers/processes.js";
import { startServer, type TestServer } from "../../dev/server.js";

let meeting: Meeting;
let server: TestServer;

beforeAll(async () => {
  meeting = await startMeeting();
  server = await startServer({ netns: meeting.netns, egress: meeting.egress, startWhen: "media" });
}, 120_000);

afterAll(async () => {
  await server?.stop();
  await meeting?.stop();
});

const TERMINAL = ["completed", "failed", "aborted"];

interface Probe { format: { duration: string }; streams: { codec_type: string; codec_name: string; width?: number; height?: number }[] }
function ffprobe(file: string): Probe {
  return JSON.parse(execFileSync("ffprobe", ["-v", "error", "-print_format", "json", "-show_format", "-show_streams", file], { encoding: "utf8" }));
}

async function download(id: string, name: string): Promise<string> {
  const r = await server.api("GET", `/v1/recordings/${id}/file`);
  expect(r.status).toBe(200);
  const file = join(server.dir, name);
  writeFileSync(file, r.body);
  return file;
}

async function record(body: Record<string, unknown>): Promise<any> {
  const r = await server.api("POST", "/v1/recordings", { url: meeting.viewerUrl, join: meeting.joinSteps(), ...body });
  expect(r.status, r.body.toString()).toBe(201);
  return r.json();
}

/** Each publisher's tile on screen and moving, and each tone sounding, in every second of the file. */
function expectMeeting(file: string): void {
  checkMeeting(file, meeting.publishers);
}

describe("recording a Janus meeting through the API", () => {
  for (const browser of ["chromium", "firefox"] as const) {
    test(`${browser}: video + audio, stopped by maxDurationSeconds`, async () => {
      const t0 = Date.now();
      const created = await record({ browser, maxDurationSeconds: 12, video: { width: 1280, height: 720, fps: 30 } });
      expect(created.status).toBe("queued");
      // The recorder's media watcher sees both publishers' cameras and microphones while it records.
      const seen = await server.waitFor(created.id, (r) => (r.participants?.now === 2 && r.media?.audio && r.media?.video) || TERMINAL.includes(r.status), 30_000);
      expect(TERMINAL).not.toContain(seen.status); // seen from the join on: starting or recording
      expect(seen.participants).toEqual({ now: 2, peak: 2 });
      expect(seen.media).toEqual({ audio: true, video: true });
      const metrics = (await server.api("GET", "/metrics")).body.toString();
      expect(metrics).toContain(`meetrec_meeting_participants{recording="${created.id}"} 2`);
      expect(metrics).toContain(`meetrec_meeting_media_flowing{recording="${created.id}",kind="video"} 1`);
      const rec = await server.waitFor(created.id, (r) => TERMINAL.includes(r.status));
      const wallS = (Date.now() - t0) / 1000;
      expect(rec.status, JSON.stringify(rec.error)).toBe("completed");
      expect(rec.endReason).toBe("limit_reached");
      expect(rec.events.map((e: any) => e.status).filter(Boolean)).toEqual(["queued", "starting", "recording", "stopping", "finalizing", "completed"]);
      expect(rec.file.streams).toEqual(["video h264 1280x720 30fps", "audio aac 48000Hz 2ch"]);

      const file = await download(rec.id, `${browser}.mp4`);
      const p = ffprobe(file);
      expect(p.streams.map((s) => s.codec_type).sort()).toEqual(["audio", "video"]);
      expect(p.streams.find((s) => s.codec_type === "video")).toMatchObject({ codec_name: "h264", width: 1280, height: 720 });
      expect(Math.abs(Number(p.format.duration) - 12)).toBeLessThanOrEqual(1);
      expect(Number(p.format.duration)).toBeLessThanOrEqual(wallS); // the test's clock: no more than the time it waited
      expectMeeting(file);
    });
  }

  test("audio only: AAC in M4A, both tones", async () => {
    const created = await record({ mode: "audio", maxDurationSeconds: 8 });
    const rec = await server.waitFor(created.id, (r) => TERMINAL.includes(r.status));
    expect(rec.status, JSON.stringify(rec.error)).toBe("completed");
    expect(rec.file.name).toBe("recording.m4a");
    const file = await download(rec.id, "audio.m4a");
    const p = ffprobe(file);
    expect(p.streams.map((s) => `${s.codec_type} ${s.codec_name}`)).toEqual(["audio aac"]);
    expect(Math.abs(Number(p.format.duration) - 8)).toBeLessThanOrEqual(1);
    expectMeeting(file);
  });

  test("ffmpeg killed mid-recording: a new period starts and the file stays continuous", async () => {
    // ≥ 992 px wide: below that the demo page's grid stacks its panels and a publisher scrolls out of view.
    const created = await record({ maxDurationSeconds: 16, video: { width: 1024, height: 576, fps: 25 } });
    const live = await server.waitFor(created.id, (r) => r.segmentCount >= 3 || TERMINAL.includes(r.status), 60_000);
    expect(live.status).toBe("recording");
    expectCaptureProcesses(created.id);
    const encoderPid = live.events.find((e: any) => e.status === "recording").data.pids.encoder as number;
    const killedAt = Date.now();
    process.kill(encoderPid, "SIGKILL");
    await server.waitFor(created.id, (r) => r.periods === 2 || TERMINAL.includes(r.status), 30_000);
    const gapS = (Date.now() - killedAt) / 1000; // the test's clock: kill → it saw the new period
    expect(gapS).toBeLessThan(3);
    const rec = await server.waitFor(created.id, (r) => TERMINAL.includes(r.status));
    expect(rec.status, JSON.stringify(rec.error)).toBe("completed");
    expect(rec.periods).toBe(2);
    const types = rec.events.map((e: any) => e.type);
    expect(types).toContain("encoder_exited");

    const file = await download(rec.id, "restart.mp4");
    const p = ffprobe(file);
    const duration = Number(p.format.duration);
    // Lost at most the open segment plus the restart gap (as the test saw it).
    expect(duration).toBeGreaterThanOrEqual(16 - (gapS + 2 + 0.5));
    // Both sides of the restart show the meeting, moving and sounding, second by second.
    expectMeeting(file);
  });

  test("a join step that times out ends failed/join_failed and leaves nothing running", async () => {
    const r = await server.api("POST", "/v1/recordings", {
      url: meeting.viewerUrl,
      join: [{ click: "#start" }, { waitFor: "#this-is-not-on-the-page", timeoutMs: 2000 }],
    });
    expect(r.status).toBe(201);
    const rec = await server.waitFor(r.json().id, (x) => TERMINAL.includes(x.status), 60_000);
    expect(rec.status).toBe("failed");
    expect(rec.error.code).toBe("join_failed");
    expect(rec.error.message).toMatch(/step 1 \(waitFor "#this-is-not-on-the-page"\).*timed out after 2000 ms/);
    expect(await recordingProcessesGone(rec.id), "capture processes left").toEqual([]);
    const sinks = execFileSync("pactl", ["--server", `unix:${server.pulseDir}/native`, "list", "short", "sinks"], { encoding: "utf8" });
    expect(sinks).not.toContain(`meetrec_${rec.id.replace(/-/g, "").slice(0, 32)}`);
  });
});
