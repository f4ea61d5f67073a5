/**
 * The media watcher's accounting of what the page receives (src/capture/watcher.ts), fed with
 * reports as the page script sends them: live sources, the peak, media flowing, and a blip
 * (one report late) that is not a departure.
 */
import { describe, expect, test } from "vitest";
import { LIVE_WINDOW_MS, MediaWatcher, type TrackReport } from "../../src/capture/watcher.js";
import { HANGOVER_MS, SPEAKING_LEVEL, SpeakingDetector, type SpeakingStretch } from "../../src/capture/speaking.js";
import { speakersDocument, speakersFileName } from "../../src/media/index.js";

const audio = (track: string, stream: string, bytes: number): TrackReport => ({ track, stream, kind: "audio", bytes, level: 0.1, energy: bytes / 1000 });
const video = (track: string, stream: string, frames: number): TrackReport => ({ track, stream, kind: "video", bytes: frames * 1000, frames });

describe("media watcher", () => {
  test("two participants (camera + microphone each) are two; one leaving, then coming back", () => {
    const w = new MediaWatcher();
    const t0 = 1_000_000;
    const both = (k: number) => [audio("a1", "1/alice", 100 * k), video("v1", "1/alice", 10 * k), audio("a2", "2/bob", 100 * k), video("v2", "2/bob", 10 * k)];
    w.take({ at: t0, peerConnections: 2, tracks: both(1) }, t0);
    expect(w.take({ at: t0 + 1000, peerConnections: 2, tracks: both(2) }, t0 + 1000)).toMatchObject({ participants: 2, peakParticipants: 2, media: { audio: true, video: true } });
    // bob's tracks stop growing: live until the window has passed
    const aliceOnly = (k: number) => [audio("a1", "1/alice", 100 * k), video("v1", "1/alice", 10 * k), audio("a2", "2/bob", 200), video("v2", "2/bob", 20)];
    expect(w.take({ at: 0, peerConnections: 2, tracks: aliceOnly(3) }, t0 + 2000).participants).toBe(2);
    expect(w.take({ at: 0, peerConnections: 2, tracks: aliceOnly(4) }, t0 + 1000 + LIVE_WINDOW_MS + 1).participants).toBe(1);
    // bob's connection closes: his tracks are no longer reported
    expect(w.take({ at: 0, peerConnections: 1, tracks: aliceOnly(5).slice(0, 2) }, t0 + 5000)).toMatchObject({ participants: 1, peakParticipants: 2 });
    // bob comes back on a new connection
    w.take({ at: 0, peerConnections: 2, tracks: [...aliceOnly(6).slice(0, 2), audio("a3", "3/bob", 50), video("v3", "3/bob", 5)] }, t0 + 6000);
    expect(w.take({ at: 0, peerConnections: 2, tracks: [...aliceOnly(7).slice(0, 2), audio("a3", "3/bob", 150), video("v3", "3/bob", 15)] }, t0 + 7000).participants).toBe(2);
  });

  test("an SFU that puts every track in one stream (Janus: `janus`) still counts its participants", () => {
    const w = new MediaWatcher();
    const tracks = (k: number) => [audio("a1", "1/janus", 100 * k), video("v1", "1/janus", 10 * k), audio("a2", "1/janus", 100 * k), video("v2", "1/janus", 10 * k)];
    w.take({ at: 0, peerConnections: 1, tracks: tracks(1) }, 0);
    expect(w.take({ at: 0, peerConnections: 1, tracks: tracks(2) }, 1000).participants).toBe(2);
  });

  test("a page that receives nothing: no participants, no media; tracks that never carried bytes are not live", () => {
    const w = new MediaWatcher();
    expect(w.take({ at: 0, peerConnections: 0, tracks: [] }, 0)).toMatchObject({ participants: 0, media: { audio: false, video: false } });
    expect(w.take({ at: 0, peerConnections: 1, tracks: [audio("a", "1/x", 0), video("v", "1/x", 0)] }, 1000)).toMatchObject({ participants: 0, media: { audio: false, video: false } });
  });

  test("sound alone is media, and the state is emitted with every report", () => {
    const w = new MediaWatcher();
    const seen: number[] = [];
    w.on("state", (s) => seen.push(s.participants));
    w.take({ at: 0, peerConnections: 1, tracks: [audio("a", "1/x", 10)] }, 0);
    expect(w.take({ at: 0, peerConnections: 1, tracks: [audio("a", "1/x", 20)] }, 1000)).toMatchObject({ participants: 1, media: { audio: true, video: false } });
    expect(seen).toEqual([1, 1]);
  });

  test("a camera whose first picture has not been decoded yet is pending (the start on media waits for it)", () => {
    const w = new MediaWatcher();
    w.take({ at: 0, peerConnections: 1, tracks: [audio("a", "1/x", 10), video("v", "1/x", 0)] }, 0);
    expect(w.take({ at: 0, peerConnections: 1, tracks: [audio("a", "1/x", 20), video("v", "1/x", 0)] }, 250)).toMatchObject({ participants: 1, media: { video: false }, videoPending: 1 });
    expect(w.take({ at: 0, peerConnections: 1, tracks: [audio("a", "1/x", 30), video("v", "1/x", 2)] }, 500)).toMatchObject({ media: { video: true }, videoPending: 0 });
  });
});

describe("who speaks when (capture/speaking.ts)", () => {
  /** Feeds `w` one audio track, 250 ms windows from `t0`, `voiced(i)` saying whether (or which part of) window i carried a 0.1-RMS tone. */
  /** Reports every 250 ms from `t0`, each handed over `lag(i)` ms after the page took it (default: at once). */
  function feed(w: MediaWatcher, track: string, t0: number, windows: number, voiced: (i: number) => boolean | number, lag: (i: number) => number = () => 0) {
    let energy = 0, duration = 0, bytes = 0;
    for (let i = 0; i <= windows; i++) {
      if (i > 0) { duration += 0.25; bytes += 1000; const part = Number(voiced(i - 1)); energy += (part * 0.1 ** 2 + (1 - part) * 0.0005 ** 2) * 0.25; }
      const at = t0 + i * 250;
      w.take({ at, peerConnections: 1, tracks: [{ track, stream: "1/janus", kind: "audio", bytes, level: 0, energy, duration }] }, at + lag(i));
    }
  }

  test("stretches from the energy per window; pauses shorter than the hangover stay inside; stillSpeaking at the stop", () => {
    const w = new MediaWatcher();
    const got: SpeakingStretch[] = [];
    w.on("speaking", (s) => got.push(s));
    const t0 = 1_000_000;
    // voiced 1.0–3.0 s, a 0.5 s pause (< HANGOVER_MS), voiced 3.5–4.0 s; silent; voiced from 8.0 s to the end (10 s)
    const on = (i: number) => (i >= 4 && i < 12) || (i >= 14 && i < 16) || i >= 32;
    feed(w, "1/a", t0, 40, on);
    expect(got).toEqual([{ track: "1/a", startMs: t0 + 1000, stopMs: t0 + 4000, stopType: "silence" }]);
    w.flushSpeaking(t0 + 10_000);
    expect(got[1]).toEqual({ track: "1/a", startMs: t0 + 8000, stopMs: t0 + 10_000, stopType: "stillSpeaking" });
    expect(HANGOVER_MS).toBeGreaterThan(500);
  });

  test("an edge inside a window is placed by the window's share of a fully voiced neighbour's energy", () => {
    const w = new MediaWatcher();
    const got: SpeakingStretch[] = [];
    w.on("speaking", (s) => got.push(s));
    const t0 = 2_000_000;
    // a tone from 1.1 s to 3.15 s: windows 4 and 12 are voiced for 60 % of their length
    feed(w, "1/t", t0, 24, (i) => (i === 4 ? 0.6 : i === 12 ? 0.6 : i > 4 && i < 12));
    expect(got).toHaveLength(1);
    expect(Math.abs(got[0]!.startMs - (t0 + 1100))).toBeLessThanOrEqual(2);
    expect(Math.abs(got[0]!.stopMs - (t0 + 3150))).toBeLessThanOrEqual(2);
  });

  test("reports handed over late (Firefox's binding: up to ~600 ms) are timed by the page: the same stretches as on time; a page time not believable is replaced by the arrival", () => {
    const stretches = (lag: (i: number) => number) => {
      const w = new MediaWatcher();
      const got: SpeakingStretch[] = [];
      w.on("speaking", (s) => got.push(s));
      feed(w, "1/b", 1_000_000, 40, (i) => i < 10 || (i >= 20 && i < 30), lag);
      return got;
    };
    const onTime = stretches(() => 0);
    expect(onTime).toHaveLength(2);
    // late by 0–600 ms, in order (a late report delays the ones behind it)
    let behind = 0;
    expect(stretches((i) => (behind = Math.max(0, behind - 250) + ((i * 7919) % 13 === 0 ? 600 : (i * 31) % 90)))).toEqual(onTime);
    const w = new MediaWatcher();
    expect(w.take({ at: 0, peerConnections: 0, tracks: [] }, 50_000).at, "page time long before the arrival").toBe(50_000);
    expect(w.take({ at: 60_000, peerConnections: 0, tracks: [] }, 51_000).at, "page time after the arrival").toBe(51_000);
    expect(w.take({ at: 49_000, peerConnections: 0, tracks: [] }, 52_000).at, "never before the previous report").toBe(51_000);
  });

  test("a track that goes away ends its stretch (left); a track carrying no bytes is silent", () => {
    const w = new MediaWatcher();
    const got: SpeakingStretch[] = [];
    w.on("speaking", (s) => got.push(s));
    feed(w, "1/b", 0, 8, () => true);
    w.take({ at: 2100, peerConnections: 0, tracks: [] }, 2100);
    expect(got).toEqual([{ track: "1/b", startMs: 0, stopMs: 2000, stopType: "left" }]);
    const d = new SpeakingDetector();
    expect(d.window("x", 0, 250, SPEAKING_LEVEL / 2)).toBeUndefined();
    expect(d.flush(1000)).toEqual([]);
  });

  test("the sidecar: file times by the file's timeline, sources named by track until an adapter names them", () => {
    const t0 = Date.parse("2026-12-07T10:00:00Z");
    const timeline = [{ fileMs: 0, wallMs: t0, durationMs: 10_000 }, { fileMs: 10_000, wallMs: t0 + 20_000, durationMs: 10_000 }];
    const iv = (id: string, name: string, a: number, b: number) => ({ participantId: id, participantName: name, participantUserId: "", startMs: t0 + a, stopMs: t0 + b, startType: "voice", stopType: "silence" });
    const doc = speakersDocument("recording.mp4", [iv("2/b", "", 22_000, 23_500), iv("1/a", "Alice", 1250, 4000)], timeline)!;
    expect(doc).toMatchObject({ version: 1, file: "recording.mp4", fileStartedAt: "2026-12-07T10:00:00.000Z", sources: [{ id: "1/a", name: "Alice" }, { id: "2/b", name: null }] });
    expect(doc.intervals.map((i) => [i.source, i.start, i.end])).toEqual([["1/a", 1.25, 4], ["2/b", 12, 13.5]]);
    expect(speakersDocument("recording.mp4", [], timeline)).toBeUndefined();
    expect(speakersFileName("recording.mp4")).toBe("recording.mp4.speakers.json");
  });
});
