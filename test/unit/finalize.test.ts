/**
 * Segment store + finalize with real ffmpeg: periods encoded like the encoder does (fMP4
 * HLS segments, CFR, keyframe per segment), stored, stitched by stream copy, then checked.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { parsePlaylist, parseProgress } from "../../src/capture/index.js";
import { framesBetween } from "../../src/capture/encoder.js";
import { parseConfig } from "../../src/config/index.js";
import { RecordingStore } from "../../src/store/index.js";
import { createLogger } from "../../src/util/log.js";
import { finalizeRecording, missingStreams } from "../../src/recorder/job.js";
import { planRecording } from "../../src/recorder/index.js";
import { manifestFrames, mediaPlace } from "../../src/media/index.js";
import { browserEgressFor } from "../../src/egress/index.js";
import { RecordingMedia, finalize } from "../../src/media/index.js";
import { audioSamples, colourFraction, frameRgb, toneLevelsDb } from "../../dev/media-check.js";
import { scratchDir } from "../helpers/scratch.js";

/** Encodes `seconds` of a solid colour + tone into an HLS fMP4 directory; returns its segments. */
function encodePeriod(dir: string, colour: string, toneHz: number, seconds: number, audioOnly = false, audioCodec: "aac" | "libopus" = "aac", offsetS = 0) {
  mkdirSync(dir, { recursive: true });
  execFileSync("ffmpeg", ["-v", "error", "-y",
    ...(audioOnly ? [] : ["-f", "lavfi", "-i", `color=c=${colour}:s=320x180:r=25:d=${seconds}`]),
    "-f", "lavfi", "-i", `sine=f=${toneHz}:sample_rate=48000:d=${seconds}`,
    ...(audioOnly ? [] : ["-r", "25", "-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-keyint_min", "50", "-sc_threshold", "0", "-pix_fmt", "yuv420p"]),
    "-c:a", audioCodec, "-ac", "2", "-ar", "48000", ...(offsetS ? ["-output_ts_offset", String(offsetS)] : []),
    "-f", "hls", "-hls_time", "2", "-hls_list_size", "0", "-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4",
    "-start_number", "1", "-hls_segment_filename", join(dir, "%06d.m4s"), join(dir, "live.m3u8")]);
  return parsePlaylist(readFileSync(join(dir, "live.m3u8"), "utf8")).map((e, i) => ({ seq: i + 1, path: join(dir, e.uri), durationMs: e.durationMs }));
}

async function store(root: string, id: string, periods: { dir: string; segs: { seq: number; path: string; durationMs: number }[] }[], mode: "video" | "audio" = "video", audioCodec?: "aac" | "opus") {
  const media = await RecordingMedia.open(root, id, { mode, segmentSeconds: 2, audioCodec });
  for (const p of periods) {
    const n = await media.beginPeriod(n0(media));
    await media.addInit(n, join(p.dir, "init.mp4"));
    for (const s of p.segs) await media.addSegment(n, s.seq, s.path, s.durationMs);
  }
  return media;
}
const n0 = (m: RecordingMedia) => (m.current.periods.length === 0 ? "start" : "encoder_restart");

describe("segment store", () => {
  test("segments are moved in, checksummed, and listed in the manifest on disk", async () => {
    const root = scratchDir("meetrec-media-");
    const enc = join(root, "enc");
    const segs = encodePeriod(enc, "red", 440, 4);
    const media = await store(root, "rec1", [{ dir: enc, segs }]);
    const onDisk = JSON.parse(readFileSync(join(media.dir, "manifest.json"), "utf8"));
    expect(onDisk.periods).toHaveLength(1);
    expect(onDisk.periods[0].init).toBe("p1/init.mp4");
    expect(onDisk.periods[0].segments.map((s: any) => s.file)).toEqual(["p1/000001.m4s", "p1/000002.m4s"]);
    for (const s of onDisk.periods[0].segments) {
      const bytes = readFileSync(join(media.dir, s.file));
      expect(s.bytes).toBe(bytes.length);
      expect(s.sha256).toBe(createHash("sha256").update(bytes).digest("hex"));
    }
    expect(onDisk.periods[0].segments[1].startMs).toBe(onDisk.periods[0].segments[0].durationMs);
    expect(readdirSync(enc).filter((f) => f.endsWith(".m4s"))).toEqual([]); // moved, not copied
  });
});

describe("finalize", () => {
  test("two periods stitch by stream copy into one continuous MP4 with both pictures and tones", async () => {
    const root = scratchDir("meetrec-media-");
    const p1 = { dir: join(root, "e1"), segs: encodePeriod(join(root, "e1"), "red", 440, 5) };
    const p2 = { dir: join(root, "e2"), segs: encodePeriod(join(root, "e2"), "blue", 1000, 4) };
    const media = await store(root, "rec2", [p1, p2]);
    const out = await finalize(media.dir, media.current);
    expect(out.name).toBe("recording.mp4");
    expect(Math.abs(out.durationSeconds - 9)).toBeLessThan(0.2);
    expect(out.probe.streams.map((s) => `${s.type}:${s.codec}`)).toEqual(["video:h264", "audio:aac"]);
    // faststart: moov before mdat
    const head = readFileSync(out.path).subarray(0, 4096).toString("latin1");
    expect(head.indexOf("moov")).toBeGreaterThan(-1);
    expect(head.indexOf("moov")).toBeLessThan(head.indexOf("mdat") === -1 ? Infinity : head.indexOf("mdat"));
    // video timestamps strictly increasing, no jumps
    const dts = execFileSync("ffprobe", ["-v", "error", "-select_streams", "v", "-show_entries", "packet=dts_time", "-of", "csv=p=0", out.path], { encoding: "utf8" }).trim().split("\n").map(Number);
    for (let i = 1; i < dts.length; i++) expect(dts[i] - dts[i - 1]).toBeGreaterThan(0), expect(dts[i] - dts[i - 1]).toBeLessThan(0.1);
    expect(colourFraction(frameRgb(out.path, 2), [255, 0, 0], 60)).toBeGreaterThan(0.9);
    expect(colourFraction(frameRgb(out.path, 7), [0, 0, 255], 60)).toBeGreaterThan(0.9);
    expect(toneLevelsDb(audioSamples(out.path, 16000, 0.5, 4), 16000, [440])[0]).toBeGreaterThan(30);
    expect(toneLevelsDb(audioSamples(out.path, 16000, 5.5, 3), 16000, [1000])[0]).toBeGreaterThan(30);
  });

  test("the file's time 0 in wall-clock time: the first period's encoder start + when its media begins", async () => {
    // Media time 0 = the encoder's spawn (it keeps capture timestamps): this period's first
    // frame came 1.5 s after it; the stitched file begins there (the remux moves it to 0).
    const root = scratchDir("meetrec-media-");
    const p1 = { dir: join(root, "e1"), segs: encodePeriod(join(root, "e1"), "red", 440, 3, false, "aac", 1.5) };
    const media = await RecordingMedia.open(root, "rec-t0", { mode: "video", segmentSeconds: 2 });
    const spawn = new Date("2026-03-01T09:15:40.000Z");
    const n = await media.beginPeriod("start", spawn);
    await media.addInit(n, join(p1.dir, "init.mp4"));
    for (const s of p1.segs) await media.addSegment(n, s.seq, s.path, s.durationMs);
    const out = await finalize(media.dir, media.current);
    const starts = execFileSync("ffprobe", ["-v", "error", "-show_entries", "stream=start_time", "-of", "csv=p=0", out.path], { encoding: "utf8" }).trim().split("\n").map(Number);
    expect(Math.min(...starts)).toBeLessThan(0.05);
    // The earliest stream (AAC's priming puts the sound ~22 ms before the picture) marks time 0.
    expect(out.startedAtMs - spawn.getTime()).toBeGreaterThanOrEqual(1450);
    expect(out.startedAtMs - spawn.getTime()).toBeLessThanOrEqual(1500);
  });

  test("audio only → M4A", async () => {
    const root = scratchDir("meetrec-media-");
    const p1 = { dir: join(root, "e1"), segs: encodePeriod(join(root, "e1"), "red", 700, 5, true) };
    const media = await store(root, "rec3", [p1], "audio");
    const out = await finalize(media.dir, media.current);
    expect(out.name).toBe("recording.m4a");
    expect(out.probe.streams.map((s) => s.type)).toEqual(["audio"]);
    expect(Math.abs(out.durationSeconds - 5)).toBeLessThan(0.2);
  });

  test("audio only, Opus: two periods → one Ogg/Opus file by stream copy, each tone in its place", async () => {
    const root = scratchDir("meetrec-media-");
    const p1 = { dir: join(root, "e1"), segs: encodePeriod(join(root, "e1"), "red", 440, 4, true, "libopus") };
    const p2 = { dir: join(root, "e2"), segs: encodePeriod(join(root, "e2"), "red", 1000, 4, true, "libopus") };
    const media = await store(root, "rec-opus", [p1, p2], "audio", "opus");
    expect(JSON.parse(readFileSync(join(media.dir, "manifest.json"), "utf8")).audioCodec).toBe("opus");
    const out = await finalize(media.dir, media.current);
    expect(out.name).toBe("recording.ogg");
    expect(readFileSync(out.path).subarray(0, 4).toString("latin1")).toBe("OggS");
    const info = JSON.parse(execFileSync("ffprobe", ["-v", "error", "-show_entries", "format=format_name:stream=codec_name,sample_rate,channels", "-of", "json", out.path], { encoding: "utf8" }));
    expect(info.format.format_name).toBe("ogg");
    expect(info.streams).toEqual([{ codec_name: "opus", sample_rate: "48000", channels: 2 }]);
    expect(Math.abs(out.durationSeconds - 8)).toBeLessThan(0.2);
    expect(toneLevelsDb(audioSamples(out.path, 16000, 0.5, 3), 16000, [440])[0]).toBeGreaterThan(30);
    expect(toneLevelsDb(audioSamples(out.path, 16000, 4.5, 3), 16000, [1000])[0]).toBeGreaterThan(30);
    expect(readdirSync(media.dir).filter((f) => f.startsWith("recording"))).toEqual(["recording.ogg"]);
  });

  test("a damaged segment fails finalize with finalize_failed and keeps every segment", async () => {
    const root = scratchDir("meetrec-media-");
    const p1 = { dir: join(root, "e1"), segs: encodePeriod(join(root, "e1"), "red", 440, 6) };
    const media = await store(root, "rec4", [p1]);
    writeFileSync(join(media.dir, "p1/000002.m4s"), Buffer.alloc(5000, 7));
    await expect(finalize(media.dir, media.current)).rejects.toMatchObject({ code: "finalize_failed" });
    for (const s of media.current.periods[0].segments) expect(existsSync(join(media.dir, s.file))).toBe(true);
    expect(existsSync(join(media.dir, "recording.mp4"))).toBe(false);
  });

  test("nothing captured → finalize_failed", async () => {
    const root = scratchDir("meetrec-media-");
    const media = await RecordingMedia.open(root, "rec5", { mode: "video", segmentSeconds: 2 });
    await expect(finalize(media.dir, media.current)).rejects.toMatchObject({ code: "finalize_failed" });
  });
});

describe("a capture without the streams it asked for is never a completed recording", () => {
  test("a video recording whose segments hold only sound ends failed no_media; the segments stay, no file is kept", async () => {
    const root = scratchDir("meetrec-media-");
    const enc = join(root, "enc");
    const segs = encodePeriod(enc, "red", 440, 4, true);
    const media = await store(root, "rec6", [{ dir: enc, segs }], "video");
    const store_ = await RecordingStore.openSqlite(join(root, "db.sqlite"));
    try {
      const cfg = parseConfig({ dataDir: root });
      const created = await store_.create({ id: "rec6", backend: "default", metadata: {}, options: { url: "https://meet.example.com/", join: [], mode: "video", browser: "chromium", video: cfg.video, maxDurationSeconds: 4 } });
      await store_.transition(created.id, "starting");
      await store_.transition(created.id, "recording");
      const rec = await store_.transition(created.id, "stopping", { reason: "limit_reached" });
      const plan = planRecording({ capture: cfg.capture, place: (r) => mediaPlace(cfg, r), egress: (b) => browserEgressFor(cfg, b), adapterFor: () => undefined, fileTargets: () => [], uploadFinal: false, autoStop: () => ({ emptySeconds: 0, idleSeconds: 0 }), start: () => ({ when: "joined", timeoutSeconds: 30 }) }, rec);
      const final = await finalizeRecording({ store: store_, log: createLogger("silent") }, plan, rec, media, { endReason: "limit_reached", abortWhenEmpty: true });
      expect(final.status).toBe("failed");
      expect(final.error).toMatchObject({ code: "no_media" });
      expect(final.error!.message).toContain("no video");
      expect(final.file ?? null).toBeNull();
      expect(readdirSync(media.dir).filter((f) => f.endsWith(".mp4"))).toEqual([]);
      expect(media.current.periods[0].segments.length).toBe(segs.length);
      for (const s of media.current.periods[0].segments) expect(existsSync(join(media.dir, s.file))).toBe(true);
    } finally {
      await store_.close();
    }
  });

  test("missingStreams names what a mode needs", () => {
    const f = (types: string[], durationSeconds = 4) => ({ probe: { streams: types.map((type) => ({ type })) } as never, durationSeconds });
    expect(missingStreams("video", f(["video", "audio"]))).toBeUndefined();
    expect(missingStreams("video", f(["video"]))).toBeUndefined(); // a page that played no sound
    expect(missingStreams("video", f(["audio"]))).toBe("video");
    expect(missingStreams("video", f([]))).toBe("video");
    expect(missingStreams("audio", f(["video"]))).toBe("audio");
    expect(missingStreams("audio", f(["audio"]))).toBeUndefined();
    expect(missingStreams("audio", f(["audio"], 0))).toBe("media (zero duration)");
  });

  test("the encoder's -progress blocks parse, a partial block is kept for the next read", () => {
    const { blocks, rest } = parseProgress("frame=0\ndup_frames=0\ndrop_frames=0\nout_time_us=0\nprogress=continue\nframe=31\ndup_frames=2\ndrop_frames=1\nout_time_us=1000000\nprogress=continue\nframe=4");
    expect(blocks).toEqual([{ frame: 0, dupFrames: 0, dropFrames: 0, outTimeUs: 0 }, { frame: 31, dupFrames: 2, dropFrames: 1, outTimeUs: 1000000 }]);
    expect(rest).toBe("frame=4");
  });

  test("a segment's frames are the statistics' difference since the previous segment; the manifest sums them", () => {
    const at = (frame: number, dupFrames: number, dropFrames: number) => ({ frame, dupFrames, dropFrames, outTimeUs: 0 });
    expect(framesBetween(undefined, at(60, 1, 0))).toEqual({ encoded: 60, duplicated: 1, dropped: 0 });
    expect(framesBetween(at(60, 1, 0), at(120, 31, 2))).toEqual({ encoded: 60, duplicated: 30, dropped: 2 });
    const seg = (frames?: { encoded: number; duplicated: number; dropped: number }) => ({ seq: 1, file: "", startMs: 0, durationMs: 2000, bytes: 1, sha256: "", ...(frames ? { frames } : {}) });
    const m = (segments: ReturnType<typeof seg>[]) => ({ version: 1 as const, recordingId: "r", mode: "video" as const, segmentSeconds: 2, updatedAt: "", periods: [{ index: 1, reason: "start", startedAt: "", segments }] });
    expect(manifestFrames(m([seg(), seg()])), "a manifest from before the counts").toBeUndefined();
    expect(manifestFrames(m([seg({ encoded: 60, duplicated: 1, dropped: 0 }), seg(), seg({ encoded: 60, duplicated: 30, dropped: 2 })]))).toEqual({ encoded: 120, duplicated: 31, dropped: 2 });
  });
});
