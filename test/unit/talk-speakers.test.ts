/**
 * Talk's speaking times (shared/protocols/nextcloud-talk.md §6): the tracker and reader scripts
 * run against Talk's call-page objects in a VM context (the page's emitters as spreed's
 * `webrtc.js` / `signaling.js` drive them, and `joinedUsers` in both shapes: Talk's `true` per
 * session and the note's user objects), the sidecar's name and JSON (the reference recorder's
 * own test vector, `tests/ParticipantTest.py` @80d1055), and the wall-clock → file-time mapping.
 */
import { createContext, runInContext } from "node:vm";
import { describe, expect, test } from "vitest";
import { fileTimeAt, fileTimeline, type Manifest } from "../../src/media/index.js";
import { READ_SCRIPT, SpeakingTimesFile, TRACKER_SCRIPT, fromPage, speakingTimesDocument, speakingTimesFileName } from "../../src/platforms/talk/index.js";
import type { SpeakerInterval } from "../../src/store/index.js";
import { sidecarProblems } from "../fixtures/talk-double.js";

/** A page with Talk's `OCA.Talk.SimpleWebRTC` (and its signaling `connection`), a clock the test moves. */
function talkPage(opts: { webrtc?: boolean; connection?: boolean; joinedUsers?: Record<string, unknown> } = {}) {
  const emitter = () => {
    const handlers: Record<string, ((...a: unknown[]) => void)[]> = {};
    return {
      on(ev: string, fn: (...a: unknown[]) => void) { (handlers[ev] ??= []).push(fn); },
      emit(ev: string, ...args: unknown[]) { for (const fn of handlers[ev] ?? []) fn(...args); },
    };
  };
  let now = 1_000_000;
  const connection = Object.assign(emitter(), { joinedUsers: opts.joinedUsers ?? {} });
  const webrtc = Object.assign(emitter(), opts.connection === false ? {} : { connection });
  const window: Record<string, unknown> = { OCA: { Talk: opts.webrtc === false ? {} : { SimpleWebRTC: webrtc } } };
  const ctx = createContext({ window, Date: { now: () => now }, Array, Object, String, JSON });
  window.window = window;
  const run = (code: string) => runInContext(code, ctx);
  return {
    install: () => run(TRACKER_SCRIPT) as string,
    read: () => JSON.parse(JSON.stringify(run(READ_SCRIPT))) as unknown[],
    at(ms: number) { now = ms; return this; },
    data: (id: string, d: unknown, type = "video") => webrtc.emit("channelMessage", { id, type }, "JanusDataChannel", d),
    peerEnded: (id: string, type = "video") => webrtc.emit("peerEnded", { id, type }),
    flags: (sessionid: string, flags: number) => connection.emit("participantFlagsChanged", { roomid: "r", sessionid, flags }),
    joined: (entries: unknown[]) => connection.emit("usersJoined", entries),
    window,
  };
}

describe("the tracker in Talk's call page", () => {
  test("every start and stop type; names learnt as Talk's frontend carries them; open intervals end as stillSpeaking", () => {
    // joinedUsers as Talk's signaling.js keeps it: session id → true
    const p = talkPage({ joinedUsers: { sA: true, sB: true } });
    expect(p.install()).toBe("ok");
    p.at(1_000_100).data("sA", { type: "nickChanged", payload: { name: "Alice Liddell", userid: "alice" } });
    p.data("sB", { type: "nickChanged", payload: "Bob" });
    p.at(1_001_000).data("sA", { type: "speaking" });
    p.at(1_001_200).data("sA", { type: "speaking" }); // already open: nothing new
    p.at(1_002_000).data("sA", { type: "stoppedSpeaking" });
    p.at(1_002_100).data("sA", { type: "stoppedSpeaking" }); // nothing open: ignored
    p.at(1_003_000).data("sB", { type: "speaking" });
    p.at(1_003_500).peerEnded("sB", "screen"); // a screen share ending says nothing about the voice
    p.at(1_004_000).peerEnded("sB");
    p.at(1_004_500).joined([{ sessionid: "sC", userid: "", user: { displayname: "+49 30 1234" } }]);
    p.at(1_005_000).flags("sC", 1 | 4);
    p.at(1_006_000).flags("sC", 1);
    p.at(1_007_000).data("sA", { type: "speaking" });
    p.at(1_008_000);
    const events = p.read();
    expect(events).toEqual([
      { participantId: "sA", participantName: "Alice Liddell", participantUserId: "alice", startTimestamp: 1_001_000, stopTimestamp: 1_002_000, startType: "speaking", stopType: "stoppedSpeaking" },
      { participantId: "sB", participantName: "Bob", participantUserId: "", startTimestamp: 1_003_000, stopTimestamp: 1_004_000, startType: "speaking", stopType: "peerEnded" },
      { participantId: "sC", participantName: "+49 30 1234", participantUserId: "", startTimestamp: 1_005_000, stopTimestamp: 1_006_000, startType: "participantFlagsChanged", stopType: "participantFlagsChanged" },
      { participantId: "sA", participantName: "Alice Liddell", participantUserId: "alice", startTimestamp: 1_007_000, stopTimestamp: 1_008_000, startType: "speaking", stopType: "stillSpeaking" },
    ]);
    // the read is destructive: nothing is left, nothing open is reopened
    expect(p.at(1_009_000).read()).toEqual([]);
    expect(fromPage(events)).toMatchObject({ dropped: 0, intervals: [{ startMs: 1_001_000, stopMs: 1_002_000 }, {}, {}, { stopType: "stillSpeaking" }] });
  });

  test("joinedUsers as the note describes them (user objects) name a session; the name is fixed when the interval opens", () => {
    const p = talkPage({ joinedUsers: { x1: { sessionid: "sA", userid: "alice", user: { displayname: "Alice" } } } });
    expect(p.install()).toBe("ok");
    p.at(1_001_000).data("sA", { type: "speaking" });
    p.at(1_001_500).data("sA", { type: "nickChanged", payload: { name: "Alice Renamed", userid: "alice" } });
    p.at(1_002_000).data("sA", { type: "stoppedSpeaking" });
    p.at(1_003_000).data("sZ", { type: "speaking" }); // nobody knows sZ
    expect(p.at(1_004_000).read()).toMatchObject([
      { participantId: "sA", participantName: "Alice", participantUserId: "alice" },
      { participantId: "sZ", participantName: "", participantUserId: "", stopType: "stillSpeaking" },
    ]);
  });

  test("no SimpleWebRTC → nothing tracked; no signaling connection → SIP not tracked, the rest is", () => {
    expect(talkPage({ webrtc: false }).install()).toBe("noSimpleWebRTC");
    const p = talkPage({ connection: false });
    expect(p.install()).toBe("noSignalingConnection");
    p.at(1_001_000).data("sA", { type: "speaking" });
    expect(p.at(1_002_000).read()).toHaveLength(1);
  });

  test("what the page returns is checked: garbage is dropped, not stored", () => {
    const good = { participantId: "s", participantName: "n", participantUserId: "", startTimestamp: 5, stopTimestamp: 6, startType: "speaking", stopType: "peerEnded" };
    const r = fromPage([good, { ...good, stopTimestamp: 4 }, { ...good, startType: "shouting" }, "x", null, { ...good, participantName: 7 }]);
    expect(r.dropped).toBe(4);
    expect(r.intervals).toHaveLength(2);
    expect(r.intervals[1].participantName).toBe("");
    expect(fromPage({ not: "a list" })).toEqual({ intervals: [], dropped: 0 });
  });
});

describe("the sidecar", () => {
  test("its name: dot, the recording's name without extension, \" speaking times.json\"", () => {
    expect(speakingTimesFileName("Recording 2026-10-02 17-37-20.webm")).toBe(".Recording 2026-10-02 17-37-20 speaking times.json");
    expect(speakingTimesFileName("Recording 2026-10-02 17-37-20.mkv")).toBe(".Recording 2026-10-02 17-37-20 speaking times.json");
  });

  const interval = (participantId: string, name: string, userId: string, startMs: number, stopMs: number, stopType: string): SpeakerInterval =>
    ({ participantId, participantName: name, participantUserId: userId, startMs, stopMs, startType: "speaking", stopType });

  test("the reference recorder's vector: relative = wall − start within one capture period", () => {
    const doc = speakingTimesDocument([
      interval("SESSION2", "", "", 1759419452062, 1759419452945, "stillSpeaking"),
      interval("SESSION1", "Alice", "alice", 1759419444344, 1759419445964, "stoppedSpeaking"),
    ], [{ fileMs: 0, wallMs: 1759419440000, durationMs: 60_000 }])!;
    expect(doc).toEqual({
      recordingStartTimestamp: 1759419440000,
      intervals: [
        { participantId: "SESSION1", participantName: "Alice", participantUserId: "alice", startTimestamp: 1759419444344, stopTimestamp: 1759419445964, startType: "speaking", stopType: "stoppedSpeaking", startTimestampRelative: 4344, stopTimestampRelative: 5964 },
        { participantId: "SESSION2", participantName: "", participantUserId: "", startTimestamp: 1759419452062, stopTimestamp: 1759419452945, startType: "speaking", stopType: "stillSpeaking", startTimestampRelative: 12062, stopTimestampRelative: 12945 },
      ],
    });
    expect(Object.keys(doc.intervals[0])).toEqual(["participantId", "participantName", "participantUserId", "startTimestamp", "stopTimestamp", "startType", "stopType", "startTimestampRelative", "stopTimestampRelative"]);
    expect(SpeakingTimesFile.safeParse(doc).success).toBe(true);
    expect(sidecarProblems(".Recording x speaking times.json", "Recording x.mp4", doc)).toEqual([]);
  });

  test("nobody spoke → no sidecar; no timeline → start 0 and relative 0, as the reference recorder writes without a start", () => {
    expect(speakingTimesDocument([], [{ fileMs: 0, wallMs: 1, durationMs: 1 }])).toBeUndefined();
    const doc = speakingTimesDocument([interval("s", "", "", 1000, 2000, "peerEnded")], undefined)!;
    expect(doc.recordingStartTimestamp).toBe(0);
    expect(doc.intervals[0]).toMatchObject({ startTimestampRelative: 0, stopTimestampRelative: 0 });
    expect(sidecarProblems(".R speaking times.json", "R.mp4", doc)).toEqual([]);
  });

  test("several capture periods: relative times are positions in the joined file; gaps and the end clamp", () => {
    // period 1: wall 10 000–14 000 → file 0–4 000; gap; period 2: wall 20 000–26 000 → file 4 000–10 000
    const timeline = [{ fileMs: 0, wallMs: 10_000, durationMs: 4000 }, { fileMs: 4000, wallMs: 20_000, durationMs: 6000 }];
    expect([5_000, 10_000, 12_500, 14_000, 17_000, 20_000, 21_000, 26_000, 40_000].map((w) => fileTimeAt(timeline, w))).toEqual([0, 0, 2500, 4000, 4000, 4000, 5000, 10_000, 10_000]);
    const doc = speakingTimesDocument([interval("s", "", "", 13_000, 21_500, "stoppedSpeaking")], timeline)!;
    expect(doc.intervals[0]).toMatchObject({ startTimestampRelative: 3000, stopTimestampRelative: 5500 });
  });

  test("the manifest's periods make the timeline: each period from its startedAt, as long as its segments, one after the other", () => {
    const m: Manifest = {
      version: 1, recordingId: "r", mode: "video", segmentSeconds: 2, updatedAt: "",
      periods: [
        { index: 1, reason: "start", startedAt: new Date(10_000).toISOString(), init: "p1/init.mp4", segments: [{ seq: 1, file: "p1/000001.m4s", startMs: 0, durationMs: 2000, bytes: 1, sha256: "" }, { seq: 2, file: "p1/000002.m4s", startMs: 2000, durationMs: 1500, bytes: 1, sha256: "" }] },
        { index: 2, reason: "encoder_restart", startedAt: new Date(30_000).toISOString(), segments: [] },
        { index: 3, reason: "resume", startedAt: new Date(40_000).toISOString(), init: "p3/init.mp4", segments: [{ seq: 1, file: "p3/000001.m4s", startMs: 3500, durationMs: 2000, bytes: 1, sha256: "" }] },
      ],
    };
    expect(fileTimeline(m)).toEqual([{ fileMs: 0, wallMs: 10_000, durationMs: 3500 }, { fileMs: 3500, wallMs: 40_000, durationMs: 2000 }]);
  });
});
