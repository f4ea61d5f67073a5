/**
 * The media watcher's accounting of what the page receives (src/capture/watcher.ts), fed with
 * reports as the page script sends them: live sources, the peak, media flowing, and a blip
 * (one report late) that is not a departure.
 */
import { describe, expect, test } from "vitest";
import { LIVE_WINDOW_MS, MediaWatcher, type TrackReport } from "../../src/capture/watcher.js";

const audio = (track: string, stream: string, bytes: number): TrackReport => ({ track, stream, kind: "audio", bytes, level: 0.1, energy: bytes / 1000 });
const video = (track: string, stream: string, frames: number): TrackReport => ({ track, stream, kind: "video", bytes: frames * 1000, frames });

describe("media watcher", () => {
  test("two participants (camera + microphone each) are two; one leaving, then coming back", () => {
    const w = new MediaWatcher();
    const t0 = 1_000_000;
    const both = (k: number) => [audio("a1", "1/alice", 100 * k), video("v1", "1/alice", 10 * k), audio("a2", "2/bob", 100 * k), video("v2", "2/bob", 10 * k)];
    w.take({ at: t0, peerConnections: 2, tracks: both(1) }, t0);
    expect(w.take({ at: t0, peerConnections: 2, tracks: both(2) }, t0 + 1000)).toMatchObject({ participants: 2, peakParticipants: 2, media: { audio: true, video: true } });
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
});
