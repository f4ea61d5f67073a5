/**
 * Per-participant tracks (src/media/tracks.ts, src/capture/tracks.ts): names, where a track lies
 * in the file, the chunk store (durable appends, the index, numbers continued by a later run),
 * the Node side of the page's recorders (order, bad input), and the remux by stream copy of a
 * chunk file — whole, and cut short as a kill -9 leaves it — with real ffmpeg.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { TrackTaps, containerOf, type TrackSink } from "../../src/capture/tracks.js";
import {
  MAX_TRACK_FILES, TRACKS_INDEX, TrackChunks, finalizeTracks, readTrackIndex, trackAlignMs, trackByNumber, trackChunkPath, trackFileName, trackOffsetMs,
} from "../../src/media/tracks.js";

const dirs: string[] = [];
const tmp = () => { const d = mkdtempSync(join(tmpdir(), "meetrec-tracks-")); dirs.push(d); return d; };
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });

describe("names and offsets", () => {
  test("a track file is named after the file and its number", () => {
    expect(trackFileName("recording.mp4", 3)).toBe("recording.mp4.track-3.ogg");
    expect(trackChunkPath(2, "webm")).toBe("tracks/2.webm");
    expect(containerOf("audio/webm;codecs=opus")).toBe("webm");
    expect(containerOf("audio/ogg;codecs=opus")).toBe("ogg");
    expect(containerOf("video/mp4")).toBeUndefined();
    expect(containerOf(undefined)).toBeUndefined();
  });

  test("offset: in the period the track starts in; negative before the file; a gap maps to the next period", () => {
    const t0 = 1_700_000_000_000;
    // period 1: file 0–10 s = wall t0…t0+10 s; period 2 (after a 5 s gap): file 10–20 s = wall t0+15 s…
    const timeline = [{ fileMs: 0, wallMs: t0, durationMs: 10_000 }, { fileMs: 10_000, wallMs: t0 + 15_000, durationMs: 10_000 }];
    expect(trackOffsetMs(timeline, t0 + 1234)).toBe(1234);
    expect(trackOffsetMs(timeline, t0 - 300), "began before the file").toBe(-300);
    expect(trackOffsetMs(timeline, t0 + 16_000)).toBe(11_000);
    expect(trackOffsetMs(timeline, t0 + 14_000), "in the gap: before period 2's start").toBe(9_000);
    expect(trackOffsetMs(timeline, t0 + 40_000), "after the file").toBeUndefined();
    expect(trackOffsetMs(undefined, t0)).toBeUndefined();
    expect(trackOffsetMs([], t0)).toBeUndefined();
  });

  test("the alignment: the browser's measured chain plus the sound's audioDelayMs", () => {
    expect(trackAlignMs("chromium", 70)).toBe(122);
    expect(trackAlignMs("firefox", 70)).toBe(137);
    expect(trackAlignMs("chromium", 100), "a later mixed sound moves the tracks with it").toBe(152);
  });

  test("a track number names one of the file's tracks, else not_found with the ones there are", () => {
    const tracks = [1, 2].map((n) => ({ name: trackFileName("recording.mp4", n), source: `1/t${n}`, startedAt: "", durationSeconds: 1, bytes: 1 }));
    expect(trackByNumber("recording.mp4", tracks, 2).source).toBe("1/t2");
    expect(() => trackByNumber("recording.mp4", tracks, 3)).toThrow(/No track 3; the recording has tracks 1, 2/);
    expect(() => trackByNumber("recording.mp4", undefined, 1)).toThrow(/no per-participant tracks/);
  });
});

describe("chunk store", () => {
  test("each chunk is on disk when append resolves; the index names every file; a later run numbers on", async () => {
    const dir = tmp();
    const a = await TrackChunks.open(dir);
    const [n1, n2] = await Promise.all([a.begin("1/alice", "webm", 1000), a.begin("2/bob", "ogg", 2000)]);
    expect([n1, n2]).toEqual([1, 2]);
    await a.append(1, Buffer.from("one"));
    await a.append(2, Buffer.from("b"));
    await a.append(1, Buffer.from("two"));
    expect(readFileSync(join(dir, "tracks/1.webm"), "utf8")).toBe("onetwo");
    expect(readFileSync(join(dir, "tracks/2.ogg"), "utf8")).toBe("b");
    await a.end(1);
    await a.append(1, Buffer.from("late")); // ended: ignored
    expect(readFileSync(join(dir, "tracks/1.webm"), "utf8")).toBe("onetwo");
    await a.close();
    expect((await readTrackIndex(dir)).tracks).toEqual([
      { n: 1, source: "1/alice", container: "webm", startedAtMs: 1000 },
      { n: 2, source: "2/bob", container: "ogg", startedAtMs: 2000 },
    ]);
    const b = await TrackChunks.open(dir);
    expect(await b.begin("1/alice", "webm", 5000)).toBe(3);
    await b.close();
    expect(JSON.parse(readFileSync(join(dir, TRACKS_INDEX), "utf8")).tracks).toHaveLength(3);
  });

  test("no index: no tracks; at most MAX_TRACK_FILES files", async () => {
    const dir = tmp();
    expect(await readTrackIndex(dir)).toEqual({ version: 1, tracks: [] });
    writeFileSync(join(dir, "x"), "");
    const s = await TrackChunks.open(dir);
    for (let i = 0; i < MAX_TRACK_FILES; i++) await s.begin(`1/t${i}`, "webm", i);
    expect(await s.begin("1/more", "webm", 0)).toBeUndefined();
    await s.close();
  });
});

describe("the page's recorders, Node side", () => {
  const sink = () => {
    const calls: string[] = [];
    let next = 0;
    const s: TrackSink & { calls: string[] } = {
      calls,
      async begin(source, container, at) { await new Promise((r) => setTimeout(r, 20)); calls.push(`begin ${source} ${container} ${at}`); return ++next; },
      async chunk(n, data) { calls.push(`chunk ${n} ${data.toString()}`); },
      async end(n) { calls.push(`end ${n}`); },
      problem(m) { calls.push(`problem ${m.slice(0, 40)}`); },
    };
    return s;
  };
  const b64 = (s: string) => Buffer.from(s).toString("base64");

  test("chunks follow their recorder's begin in order; repeated or unknown ones are dropped; a new page ends the old page's files", async () => {
    const s = sink();
    const taps = new TrackTaps(s);
    taps.take(1, { type: "data", id: 1, seq: 1, data: b64("early") }); // before its start: dropped
    taps.take(1, { type: "start", id: 1, track: "1/a", mime: "audio/webm;codecs=opus", at: 100 });
    taps.take(1, { type: "data", id: 1, seq: 1, data: b64("x") });
    taps.take(1, { type: "data", id: 1, seq: 1, data: b64("again") }); // same seq: dropped
    taps.take(1, { type: "start", id: 2, track: "1/b", mime: "audio/ogg;codecs=opus", at: 200 });
    taps.take(1, { type: "data", id: 2, seq: 1, data: b64("y") });
    taps.take(1, { type: "data", id: 1, seq: 2, data: b64("z") });
    taps.take(1, { type: "end", id: 2 });
    taps.take(1, { type: "start", id: 3, track: "1/c", mime: "audio/mp4", at: 300 }); // not Opus in WebM/Ogg
    taps.take(2, { type: "data", id: 1, seq: 3, data: b64("other page") }); // another page's recorder 1: unknown
    await taps.drain(100); // recorder 1 sent no end: ended here
    const of = (n: number) => s.calls.filter((c) => c.endsWith(` ${n}`) || c.includes(` ${n} `));
    expect(s.calls.filter((c) => c.startsWith("begin"))).toEqual(["begin 1/a webm 100", "begin 1/b ogg 200"]);
    expect(of(1)).toEqual(["chunk 1 x", "chunk 1 z", "end 1"]);
    expect(of(2)).toEqual(["chunk 2 y", "end 2"]);
    expect(s.calls.some((c) => c.startsWith("problem the browser records audio/mp4"))).toBe(true);
  });

  test("a chunk larger than the limit is dropped", async () => {
    const s = sink();
    const taps = new TrackTaps(s);
    taps.take(1, { type: "start", id: 1, track: "1/a", mime: "audio/webm", at: 1 });
    taps.take(1, { type: "data", id: 1, seq: 1, data: "A".repeat(1024 * 1024) });
    taps.take(1, { type: "end", id: 1 });
    await taps.drain(100);
    expect(s.calls.filter((c) => c.startsWith("chunk"))).toEqual([]);
  });
});

describe("finalize (real ffmpeg)", () => {
  /** Opus in WebM, `seconds` of a `hz` tone, as a browser's MediaRecorder writes it (one stream, Opus). */
  const webm = (dir: string, hz: number, seconds: number) => {
    const f = join(dir, `src-${hz}.webm`);
    execFileSync("ffmpeg", ["-v", "error", "-y", "-f", "lavfi", "-i", `sine=f=${hz}:sample_rate=48000:d=${seconds}`, "-c:a", "libopus", "-b:a", "32k", "-f", "webm", "-cluster_time_limit", "1000", f]);
    return readFileSync(f);
  };

  test("chunk files become Ogg/Opus by stream copy beside the file, with their offsets; one cut by a kill keeps what came before the cut; an empty one is skipped", async () => {
    const dir = tmp();
    const t0 = 1_700_000_000_000;
    const s = await TrackChunks.open(dir);
    const whole = webm(dir, 440, 6);
    const n1 = (await s.begin("1/alice", "webm", t0 + 250))!;
    for (let i = 0; i < whole.length; i += 4096) await s.append(n1, whole.subarray(i, i + 4096));
    const n2 = (await s.begin("1/bob", "webm", t0 + 500))!;
    const cut = webm(dir, 1000, 6);
    await s.append(n2, cut);
    const n3 = (await s.begin("1/carol", "webm", t0 + 900))!;
    await s.close();
    truncateSync(join(dir, trackChunkPath(n2, "webm")), Math.round(cut.length * 0.6) + 7); // mid-cluster, as a kill leaves it
    writeFileSync(join(dir, "recording.mp4"), "");
    const out = await finalizeTracks(dir, "recording.mp4", [{ fileMs: 0, wallMs: t0, durationMs: 10_000 }], { ffmpegPath: "ffmpeg", ffprobePath: "ffprobe" }, 20);
    expect(out.skipped).toEqual([{ n: n3, why: "no sound arrived" }]);
    expect(out.tracks.map((t) => [t.name, t.source, t.offsetMs])).toEqual([
      ["recording.mp4.track-1.ogg", "1/alice", 270],
      ["recording.mp4.track-2.ogg", "1/bob", 520],
    ]);
    expect(out.tracks[0].durationSeconds).toBeGreaterThan(5.9);
    expect(out.tracks[1].durationSeconds).toBeGreaterThan(2.5);
    expect(out.tracks[1].durationSeconds).toBeLessThan(4.5);
    for (const t of out.tracks) {
      const streams = execFileSync("ffprobe", ["-v", "error", "-show_entries", "stream=codec_name:format=format_name", "-of", "csv=p=0", join(dir, t.name)], { encoding: "utf8" });
      expect(streams).toContain("opus");
      expect(streams).toContain("ogg");
      expect(t.bytes).toBeGreaterThan(1000);
    }
  });
});
