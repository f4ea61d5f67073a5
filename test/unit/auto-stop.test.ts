/**
 * Stopping when the meeting is over (src/recorder/auto-stop.ts): empty after everyone left,
 * never on a blip, never for a page that never received media; idle when nobody is audible and
 * no camera is on.
 */
import { describe, expect, test } from "vitest";
import type { MeetingState } from "../../src/capture/index.js";
import { AutoStop } from "../../src/recorder/auto-stop.js";
import { leftMeeting } from "../../src/capture/session.js";
import { parseConfig } from "../../src/config/index.js";
import { RecordingRequest, resolveAutoStop, resolveOptions, resolveStart } from "../../src/recordings/index.js";

const state = (participants: number, o: { audible?: boolean; video?: boolean } = {}): MeetingState => ({
  participants, peakParticipants: 2, media: { audio: participants > 0, video: o.video ?? participants > 0 },
  videoPending: 0, audible: o.audible ?? participants > 0, peerConnections: participants, at: 0,
});

describe("auto stop", () => {
  test("everyone left for emptySeconds → meeting_empty, counted from when the last one left", () => {
    const a = new AutoStop({ emptySeconds: 60, idleSeconds: 0 });
    expect(a.observe(state(2), 0)).toBeUndefined();
    expect(a.observe(state(0), 10_000)).toBeUndefined();
    expect(a.observe(state(0), 69_999)).toBeUndefined();
    expect(a.observe(state(0), 70_000)).toMatchObject({ reason: "meeting_empty", sinceMs: 10_000 });
  });

  test("a participant back within the window cancels the countdown", () => {
    const a = new AutoStop({ emptySeconds: 10, idleSeconds: 0 });
    a.observe(state(1), 0);
    a.observe(state(0), 1000);
    expect(a.observe(state(1), 9000)).toBeUndefined();
    expect(a.observe(state(0), 10_000)).toBeUndefined();
    expect(a.observe(state(0), 19_999)).toBeUndefined();
    expect(a.observe(state(0), 20_000)?.reason).toBe("meeting_empty");
  });

  test("a page that never received media is never empty; 0 s turns empty off", () => {
    const a = new AutoStop({ emptySeconds: 5, idleSeconds: 0 });
    for (let t = 0; t <= 60_000; t += 1000) expect(a.observe(state(0), t)).toBeUndefined();
    const off = new AutoStop({ emptySeconds: 0, idleSeconds: 0 });
    off.observe(state(1), 0);
    expect(off.observe(state(0), 3_600_000)).toBeUndefined();
  });

  test("idle: present but inaudible with no camera for idleSeconds → meeting_idle; speech or a camera resets it", () => {
    const a = new AutoStop({ emptySeconds: 60, idleSeconds: 30 });
    a.observe(state(2), 0);
    a.observe(state(2, { audible: false, video: false }), 1000);
    expect(a.observe(state(2, { audible: true, video: false }), 20_000)).toBeUndefined();
    a.observe(state(2, { audible: false, video: false }), 21_000);
    expect(a.observe(state(2, { audible: false, video: true }), 40_000)).toBeUndefined(); // a camera is on
    a.observe(state(2, { audible: false, video: false }), 41_000);
    expect(a.observe(state(2, { audible: false, video: false }), 70_999)).toBeUndefined();
    expect(a.observe(state(2, { audible: false, video: false }), 71_000)).toMatchObject({ reason: "meeting_idle", sinceMs: 41_000 });
  });
});

describe("when a recording begins and ends: the request over the backend over the server", () => {
  const cfg = parseConfig({
    autoStop: { idleSeconds: 300 }, startTimeoutSeconds: 20,
    backends: { b: { apiKey: "0123456789abcdef0123", autoStop: { emptySeconds: 30 }, startWhen: "joined" } },
  });
  test("defaults: start on media within 30 s, empty after 60 s, never idle", () => {
    const d = parseConfig({});
    expect(resolveStart(d, undefined)).toEqual({ when: "media", timeoutSeconds: 30 });
    expect(resolveAutoStop(d, undefined)).toEqual({ emptySeconds: 60, idleSeconds: 0 });
  });
  test("field by field", () => {
    expect(resolveStart(cfg, cfg.backends.b)).toEqual({ when: "joined", timeoutSeconds: 20 });
    expect(resolveStart(cfg, cfg.backends.b, { startWhen: "media", startTimeoutSeconds: 5 })).toEqual({ when: "media", timeoutSeconds: 5 });
    expect(resolveAutoStop(cfg, cfg.backends.b)).toEqual({ emptySeconds: 30, idleSeconds: 300 });
    expect(resolveAutoStop(cfg, cfg.backends.b, { emptySeconds: 0, endedSelector: ".ended" })).toEqual({ emptySeconds: 0, idleSeconds: 300, endedSelector: ".ended" });
  });
  test("a request's options carry both; bad values are refused", () => {
    const o = resolveOptions(cfg, "b", RecordingRequest.parse({ url: "https://meet.example.com/r", startTimeoutSeconds: 9 }));
    expect(o.start).toEqual({ when: "joined", timeoutSeconds: 9 });
    expect(o.autoStop).toEqual({ emptySeconds: 30, idleSeconds: 300 });
    expect(RecordingRequest.safeParse({ url: "https://meet.example.com/r", startWhen: "later" }).success).toBe(false);
    expect(RecordingRequest.safeParse({ url: "https://meet.example.com/r", startTimeoutSeconds: 0 }).success).toBe(false);
    expect(() => parseConfig({ startWhen: "soon" })).toThrow(/startWhen/);
  });
});

describe("the page leaves the meeting's origin (capture/session.ts leftMeeting)", () => {
  const meeting = "https://meet.example.org";
  test("another http(s) origin is an end; the same origin (any path, query or fragment) is not", () => {
    expect(leftMeeting(meeting, "https://example.org/left")).toBe(true);
    expect(leftMeeting(meeting, "http://meet.example.org/room")).toBe(true); // another scheme is another origin
    expect(leftMeeting(meeting, "https://meet.example.org:8443/room")).toBe(true);
    expect(leftMeeting(meeting, "https://meet.example.org/room/2?x=1#y")).toBe(false);
    expect(leftMeeting(meeting, "https://MEET.example.org/")).toBe(false);
  });

  test("pages that are not http(s) are not an end: a crash or a network error shows them too", () => {
    for (const u of ["about:blank", "chrome-error://chromewebdata/", "about:neterror?e=connectionFailure", "", "not a url"]) expect(leftMeeting(meeting, u)).toBe(false);
  });
});
