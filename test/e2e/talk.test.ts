/**
 * meetrec as Nextcloud Talk's recording server, against a Talk test double that speaks and
 * checks Talk's side exactly (shared/protocols/nextcloud-talk.md).
 */
import { execFileSync } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { JOINED_RGB, TalkDouble, selfSignedCert, sidecarNameFor, sidecarProblems, type SpeakingScript, type Upload } from "../fixtures/talk-double.js";
import { audioSamples, colourFraction, decodeFrames, frameRgb, pageTimeline, probe, toneLevelsDb } from "../../dev/media-check.js";
import { unixRequest } from "../../dev/server.js";
import { startServer, type TestServer } from "../../dev/server.js";
import { scratchDir } from "../helpers/scratch.js";

const SECRET = randomBytes(24).toString("hex");
const TERMINAL = ["completed", "failed", "aborted"];
const INTERNAL = randomBytes(16).toString("hex");
let talk: TalkDouble;
let badHpb: TalkDouble; // a second Talk whose signaling server has another internal secret than meetrec's
let server: TestServer;
let selfSigned: TalkDouble; // HTTPS with a self-signed certificate, skipVerify on
let selfSignedStrict: TalkDouble; // the same, but meetrec verifies
let oldTalk: TalkDouble; // a Talk from before MP4 recordings (spreed PR #17635)

beforeAll(async () => {
  talk = new TalkDouble(SECRET, INTERNAL);
  await talk.start();
  badHpb = new TalkDouble(SECRET, "the-signaling-server-has-this-one");
  await badHpb.start();
  const cert = selfSignedCert(scratchDir("meetrec-cert-"));
  selfSigned = new TalkDouble(SECRET, INTERNAL);
  await selfSigned.start(cert);
  selfSignedStrict = new TalkDouble(SECRET, INTERNAL);
  await selfSignedStrict.start(cert);
  oldTalk = new TalkDouble(SECRET, INTERNAL).oldTalk();
  await oldTalk.start();
  server = await startServer({ config: {
    delivery: { retry: { initialDelayMs: 300, maxDelayMs: 2000, factor: 2 }, pollIntervalMs: 100 },
    backends: {
      default: { apiKey: "test-key-0123456789abcdef" },
      cloud: { talk: { url: talk.url, secret: SECRET }, video: { width: 640, height: 360, fps: 15 } },
      cloud2: { talk: { url: badHpb.url, secret: SECRET }, video: { width: 640, height: 360, fps: 15 } },
      selfsigned: { talk: { url: selfSigned.url, secret: SECRET, skipVerify: true }, video: { width: 640, height: 360, fps: 15 } },
      strict: { talk: { url: selfSignedStrict.url, secret: SECRET }, video: { width: 640, height: 360, fps: 15 } },
      old: { talk: { url: oldTalk.url, secret: SECRET }, video: { width: 640, height: 360, fps: 15 } },
    },
    talk: { signaling: { internalSecret: INTERNAL, servers: [{ url: badHpb.signalingUrl.replace(/^ws/, "http"), internalSecret: "not-what-the-hpb-has" }] } },
  } });
});

afterAll(async () => {
  await server?.stop();
  await talk?.stop();
  await badHpb?.stop();
  await selfSigned?.stop();
  await selfSignedStrict?.stop();
  await oldTalk?.stop();
});

const start = (status = 1, owner = "alice") => ({ type: "start", start: { status, owner, actor: { type: "users", id: owner } } });
const stop = (actor?: string) => ({ type: "stop", stop: actor ? { actor: { type: "users", id: actor } } : {} });

/** Final files on meetrec's disk. */
function finalFiles(): Buffer[] {
  const root = join(server.dataDir, "recordings");
  return readdirSync(root).flatMap((id) => readdirSync(join(root, id)).filter((f) => /^recording\.(mp4|m4a)$/.test(f)).map((f) => readFileSync(join(root, id, f))));
}

async function waitUntil<T>(what: string, fn: () => T | undefined | false, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Checks a callback as Talk does, and returns its body. */
function verifyCallback(cb: { headers: Record<string, string | undefined>; body: unknown }): void {
  expect(cb.headers["ocs-apirequest"]).toBe("true");
  expect(cb.headers["talk-recording-random"]!.length).toBeGreaterThanOrEqual(32);
  const want = createHmac("sha256", SECRET).update(cb.headers["talk-recording-random"]!).update(JSON.stringify(cb.body)).digest("hex");
  expect(cb.headers["talk-recording-checksum"]).toBe(want);
  expect(cb.headers["user-agent"]).toMatch(/^meetrec\/\d/);
}

/**
 * The call's speaking, as Talk's frontend hands it to the page (`talk-call-page.ts`): Alice and
 * Bob are in the room before the recorder joins, their names come as `nickChanged` (Alice's
 * with her user id, Bob a guest); a phone joins through SIP later. Alice speaks (the repeated
 * `speaking` changes nothing), Bob speaks until his peer ends (his screen share's end before
 * that says nothing), the phone speaks by its flags, and Alice speaks again until the stop.
 */
const CALL: SpeakingScript = {
  present: ["sessAlice", "sessBob"],
  steps: [
    { at: 800, nick: { session: "sessAlice", payload: { name: "Alice Liddell", userid: "alice" } } },
    { at: 900, nick: { session: "sessBob", payload: "Bob" } },
    { at: 1500, speaking: "sessAlice" },
    { at: 1800, speaking: "sessAlice" },
    { at: 2900, stoppedSpeaking: "sessAlice" },
    { at: 3300, speaking: "sessBob" },
    { at: 3700, peerEnded: { session: "sessBob", type: "screen" } },
    { at: 4400, peerEnded: { session: "sessBob", type: "video" } },
    { at: 4700, join: { session: "sessPhone", userid: "", displayname: "Phone +49 30 1234" } },
    { at: 5000, flags: { session: "sessPhone", flags: 1 | 4 } },
    { at: 5900, flags: { session: "sessPhone", flags: 1 } },
    { at: 6400, speaking: "sessAlice" },
  ],
};
/** The intervals CALL makes (step indices of their start and stop; stop `undefined`: still speaking at the stop). */
const CALL_INTERVALS = [
  { participantId: "sessAlice", participantName: "Alice Liddell", participantUserId: "alice", start: 2, stop: 4, startType: "speaking", stopType: "stoppedSpeaking" },
  { participantId: "sessBob", participantName: "Bob", participantUserId: "", start: 5, stop: 7, startType: "speaking", stopType: "peerEnded" },
  { participantId: "sessPhone", participantName: "Phone +49 30 1234", participantUserId: "", start: 9, stop: 10, startType: "participantFlagsChanged", stopType: "participantFlagsChanged" },
  { participantId: "sessAlice", participantName: "Alice Liddell", participantUserId: "alice", start: 11, stop: undefined, startType: "speaking", stopType: "stillSpeaking" },
];

/** Waits until the call page of `token` has played all of `script`, and a second more. */
async function playedOut(t: TalkDouble, token: string, script: SpeakingScript): Promise<void> {
  await waitUntil(`${token}'s call page played its speaking`, () => t.speakingFired.filter((f) => f.token === token).length === script.steps.length, 30_000);
  await new Promise((r) => setTimeout(r, 1000));
}

/**
 * Checks the sidecar that came with `upload` against what the call page did: the format (the
 * double's protocol check), the participants, names, types, the wall-clock times the page fired
 * (± 20 ms: the tracker stamps them in the same handler), and every relative time against the
 * file itself — the page clock in its frames says which file time shows which wall clock — to
 * ± 0.5 s; `recordingStartTimestamp` is the wall clock at the file's time 0, ± 0.5 s. An
 * interval still open at the stop ends between the stop request and the upload, in the file.
 */
function checkSidecar(upload: Upload, expected: typeof CALL_INTERVALS, fired: { index: number; at: number }[], stopAt: number, name: string): void {
  expect(upload.intervals?.fileName).toBe(sidecarNameFor(upload.fileName));
  const doc = upload.intervals!.json;
  expect(sidecarProblems(upload.intervals!.fileName, upload.fileName, doc)).toEqual([]);
  const file = join(server.dir, name);
  writeFileSync(file, upload.bytes);
  const { runs } = pageTimeline(decodeFrames(file, 10));
  expect(runs.length).toBeGreaterThan(0);
  const durationMs = probe(file).durationS * 1000;
  // The file time showing `wallMs`: inside a run of the page clock, or up to 1 s past its end —
  // the file's last frames show the clock of the moment capture ended (a time after the end of
  // the file is the end of the file).
  const fileTime = (wallMs: number) => {
    const run = runs.find((r) => wallMs >= r.wallFromMs - 100 && wallMs <= r.wallToMs + 1000);
    if (!run) throw new Error(`no page frame shows wall clock ${wallMs} (runs ${JSON.stringify(runs)})`);
    return Math.min(run.from * 1000 + (wallMs - run.wallFromMs), durationMs);
  };
  expect(Math.abs(doc.recordingStartTimestamp - (runs[0].wallFromMs - runs[0].from * 1000)), "recordingStartTimestamp").toBeLessThanOrEqual(500);
  const at = (i: number) => fired.find((f) => f.index === i)!.at;
  expect(doc.intervals.map((i: any) => ({ ...i, startTimestamp: 0, stopTimestamp: 0, startTimestampRelative: 0, stopTimestampRelative: 0 })))
    .toEqual(expected.map((e) => ({ participantId: e.participantId, participantName: e.participantName, participantUserId: e.participantUserId, startTimestamp: 0, stopTimestamp: 0, startType: e.startType, stopType: e.stopType, startTimestampRelative: 0, stopTimestampRelative: 0 })));
  expected.forEach((e, n) => {
    const got = doc.intervals[n];
    expect(Math.abs(got.startTimestamp - at(e.start)), `interval ${n} start`).toBeLessThanOrEqual(20);
    if (e.stop !== undefined) expect(Math.abs(got.stopTimestamp - at(e.stop)), `interval ${n} stop`).toBeLessThanOrEqual(20);
    else {
      expect(got.stopTimestamp, `interval ${n} still speaking at the stop`).toBeGreaterThanOrEqual(stopAt);
      expect(got.stopTimestamp).toBeLessThanOrEqual(upload.at);
      expect(got.stopTimestampRelative).toBeLessThanOrEqual(durationMs);
    }
    expect(Math.abs(got.startTimestampRelative - fileTime(got.startTimestamp)), `interval ${n} start in the file`).toBeLessThanOrEqual(500);
    expect(Math.abs(got.stopTimestampRelative - fileTime(got.stopTimestamp)), `interval ${n} stop in the file`).toBeLessThanOrEqual(500);
  });
}

describe("Talk → meetrec requests", () => {
  test("welcome answers the version, without the signaling feature header", async () => {
    const r = await unixRequest(server.socket, "GET", "/api/v1/welcome");
    expect(r.status).toBe(200);
    expect(r.json()).toEqual({ version: expect.stringMatching(/^\d+\.\d+\.\d+/) });
    expect(r.headers["x-spreed-signaling-features"]).toBeUndefined();
  });

  test("checks in the protocol's order, with its status codes; nothing is created", async () => {
    const s = server.socket;
    const cases: [string, Promise<{ status: number }>, number][] = [
      ["no backend header", talk.roomRequest(s, "room1", start(), { backend: null }), 403],
      ["unknown backend", talk.roomRequest(s, "room1", start(), { backend: "https://other.example.com/" }), 403],
      ["no random", talk.roomRequest(s, "room1", start(), { random: null }), 403],
      ["no checksum", talk.roomRequest(s, "room1", start(), { checksum: null }), 403],
      ["empty body", talk.roomRequest(s, "room1", undefined, { raw: "" }), 400],
      ["body over maxMessageSize", talk.roomRequest(s, "room1", { ...start(), pad: "x".repeat(2000) }), 400],
      ["wrong checksum", talk.roomRequest(s, "room1", start(), { checksum: "0".repeat(64) }), 403],
      ["malformed JSON", talk.roomRequest(s, "room1", undefined, { raw: "{\"type\": \"start\"" }), 400],
      ["not a start or stop", talk.roomRequest(s, "room1", { type: "pause" }), 400],
      ["start without owner", talk.roomRequest(s, "room1", { type: "start", start: { actor: { type: "users", id: "a" } } }), 400],
      ["stop of an unknown conversation", talk.roomRequest(s, "nosuchroom", stop("bob")), 404],
    ];
    for (const [name, res, status] of cases) expect((await res).status, name).toBe(status);
    // the backend URL without its trailing slash is the same backend (check 1 passes, check 4 fails)
    expect((await talk.roomRequest(s, "room1", start(), { backend: talk.url.replace(/\/$/, ""), checksum: "f".repeat(64) })).status).toBe(403);
    expect((await server.api("GET", "/v1/recordings?limit=1000")).json().recordings).toEqual([]);
    expect(readdirSync(server.dataDir).includes("recordings") ? readdirSync(join(server.dataDir, "recordings")) : []).toEqual([]);
    expect(server.log()).toContain("Checksum verification failed");
    expect(server.log()).not.toContain(SECRET);
  });

  test("two broken checks at once: the first one in the reference recorder's order answers (Server.py _validateRequest)", async () => {
    const s = server.socket;
    const big = { ...start(), pad: "x".repeat(2000) };
    const used = randomBytes(32).toString("hex");
    // a signed stop for an unknown conversation: 404, and its random is used up
    expect((await talk.roomRequest(s, "nosuchroom", stop("bob"), { signedRandom: used })).status).toBe(404);
    const cases: [string, Promise<{ status: number; body: string }>, number, RegExp][] = [
      ["no backend header + no random", talk.roomRequest(s, "room1", start(), { backend: null, random: null }), 403, /missing Talk-Recording-Backend/],
      ["unknown backend + no checksum", talk.roomRequest(s, "room1", start(), { backend: "https://other.example.com/", checksum: null }), 403, /is not configured/],
      ["no random + empty body", talk.roomRequest(s, "room1", undefined, { raw: "", random: null }), 403, /missing Talk-Recording-Random/],
      ["no checksum + body over maxMessageSize", talk.roomRequest(s, "room1", big, { checksum: null }), 403, /missing Talk-Recording-Checksum/],
      ["body over maxMessageSize + wrong checksum", talk.roomRequest(s, "room1", big, { checksum: "0".repeat(64) }), 400, /larger than 1024 bytes/],
      ["empty body + wrong checksum", talk.roomRequest(s, "room1", undefined, { raw: "", checksum: "0".repeat(64) }), 400, /empty body/],
      ["wrong checksum + malformed JSON", talk.roomRequest(s, "room1", undefined, { raw: "{\"type\": ", checksum: "0".repeat(64) }), 403, /checksum verification failed/],
      ["wrong checksum + stop of an unknown conversation", talk.roomRequest(s, "nosuchroom", stop("bob"), { checksum: "0".repeat(64) }), 403, /checksum verification failed/],
      ["replayed random + wrong checksum", talk.roomRequest(s, "nosuchroom", stop("bob"), { signedRandom: used, checksum: "0".repeat(64) }), 403, /checksum verification failed/],
      ["replayed random + stop of an unknown conversation", talk.roomRequest(s, "nosuchroom", stop("bob"), { signedRandom: used }), 403, /replayed request/],
      ["replayed random + malformed JSON", talk.roomRequest(s, "room1", undefined, { raw: "{\"type\": ", signedRandom: used }), 403, /replayed request/],
      ["not a start or stop + bad conversation token", talk.roomRequest(s, "bad-token", { type: "pause" }), 400, /not a start or stop/],
    ];
    for (const [name, res, status, error] of cases) {
      const r = await res;
      expect(r.status, name).toBe(status);
      expect(JSON.parse(r.body).error, name).toMatch(error);
    }
    expect((await server.api("GET", "/v1/recordings?limit=1000")).json().recordings).toEqual([]);
  });
});

describe("a Talk recording end to end", () => {
  test("start (twice) → started → stop → stopped → upload with its speaking times; file identical to meetrec's", async () => {
    const s = server.socket;
    talk.speaking.set("abc123", CALL);
    expect((await talk.roomRequest(s, "abc123", start(1, "alice"))).status).toBe(200);
    expect((await talk.roomRequest(s, "abc123", start(1, "alice"))).status).toBe(200);
    const started = await waitUntil("started callback", () => talk.callbacks.find((c) => c.body.type === "started" && c.body.started.token === "abc123"));
    verifyCallback(started);
    expect(started.body).toEqual({ type: "started", started: { token: "abc123", status: 1, actor: { type: "users", id: "alice" } } });
    const list = (await server.api("GET", "/v1/recordings?limit=1000")).json().recordings;
    expect(list).toHaveLength(0); // Talk's recordings belong to the Talk backend, not to API key holders
    await playedOut(talk, "abc123", CALL);
    const stopAt = Date.now();
    expect((await talk.roomRequest(s, "abc123", stop("bob"))).status).toBe(200);
    const stopped = await waitUntil("stopped callback", () => talk.callbacks.find((c) => c.body.type === "stopped" && c.body.stopped.token === "abc123"));
    verifyCallback(stopped);
    expect(stopped.body).toEqual({ type: "stopped", stopped: { token: "abc123", actor: { type: "users", id: "bob" } } });
    const upload = await waitUntil("upload", () => talk.uploads.find((u) => u.token === "abc123"));
    expect(upload.owner).toBe("alice");
    expect(upload.contentType).toBe("video/mp4");
    expect(upload.fileName).toMatch(/^Recording \d{4}-\d{2}-\d{2} \d{2}-\d{2}-\d{2}\.mp4$/);
    expect(upload.at).toBeGreaterThan(stopped.at);
    expect(upload.bytes.subarray(4, 8).toString()).toBe("ftyp");
    expect(finalFiles().some((f) => Buffer.compare(f, upload.bytes) === 0)).toBe(true);
    // joined through OCA.Talk with the right HMACs, left with signalingKill before the upload
    expect(talk.settingsRequests.filter((r) => r.token === "abc123")).toEqual([{ token: "abc123", ok: true }]);
    expect(talk.joins.filter((j) => j.token === "abc123")).toEqual([{ token: "abc123", ok: true, backend: talk.url }]);
    const kill = talk.kills.find((k) => k.token === "abc123")!;
    expect(kill.at).toBeLessThan(upload.at);
    // the picture is the joined call (green), not the waiting page
    const file = join(server.dir, "talk.mp4");
    writeFileSync(file, upload.bytes);
    expect(colourFraction(frameRgb(file, 2), JOINED_RGB)).toBeGreaterThan(0.9);
    expect(toneLevelsDb(audioSamples(file, 16000, 1, 2), 16000, [700])[0]).toBeGreaterThan(20);
    expect(talk.callbacks.filter((c) => c.body.type === "started" && c.body.started.token === "abc123")).toHaveLength(1);
    // the single upload carried the speaking times as its intervalsFile part
    expect(upload.method).toBe("multipart");
    checkSidecar(upload, CALL_INTERVALS, talk.speakingFired.filter((f) => f.token === "abc123"), stopAt, "talk-speaking.mp4");
    expect(talk.refused).toEqual([]);
  });

  test("audio only (status 2) → an audio-only MP4 Talk stores (Talk refuses M4A); a stop without actor → stopped without actor", async () => {
    const s = server.socket;
    expect((await talk.roomRequest(s, "audio7", start(2, "carol"))).status).toBe(200);
    await waitUntil("started", () => talk.callbacks.find((c) => c.body.type === "started" && c.body.started.token === "audio7"));
    await new Promise((r) => setTimeout(r, 3000));
    expect((await talk.roomRequest(s, "audio7", stop())).status).toBe(200);
    const stopped = await waitUntil("stopped", () => talk.callbacks.find((c) => c.body.type === "stopped" && c.body.stopped.token === "audio7"));
    expect(stopped.body).toEqual({ type: "stopped", stopped: { token: "audio7" } });
    const upload = await waitUntil("upload", () => talk.uploads.find((u) => u.token === "audio7"));
    // Talk sniffs the bytes: they must be video/mp4 (an M4A is audio/x-m4a → file_mimetype) and named .mp4
    expect(upload).toMatchObject({ owner: "carol", contentType: "video/mp4", method: "multipart" });
    expect(upload.fileName).toMatch(/^Recording .*\.mp4$/);
    const file = join(server.dir, "talk-audio.mp4");
    writeFileSync(file, upload.bytes);
    expect(toneLevelsDb(audioSamples(file, 16000, 0.5, 2), 16000, [700])[0]).toBeGreaterThan(20);
    // the M4A meetrec keeps is unchanged, and the copy made for Talk is gone
    const dir = join(server.dataDir, "recordings", readdirSync(join(server.dataDir, "recordings")).find((id) => readdirSync(join(server.dataDir, "recordings", id)).includes("recording.m4a"))!);
    expect(readdirSync(dir).filter((f) => /talk/.test(f))).toEqual([]);
    expect(execFileSync("file", ["-b", "--mime-type", file]).toString().trim()).toBe("video/mp4"); // what Talk's libmagic sees
    expect(upload.intervals).toBeUndefined(); // nobody spoke: no sidecar, as the reference recorder writes none
    expect(talk.refused).toEqual([]); // e.g. a started.status other than the 2 Talk asked for
  });

  test("an upload refused with 400 size is kept and retried; a stop before capture began → stopped", async () => {
    const s = server.socket;
    talk.rejectUploadsWithSize = 2;
    expect((await talk.roomRequest(s, "big1", start(1, "dave"))).status).toBe(200);
    await waitUntil("started", () => talk.callbacks.find((c) => c.body.type === "started" && c.body.started.token === "big1"));
    await new Promise((r) => setTimeout(r, 3000));
    await talk.roomRequest(s, "big1", stop("dave"));
    const upload = await waitUntil("upload after two refusals", () => talk.uploads.find((u) => u.token === "big1"));
    expect(upload.bytes.length).toBeGreaterThan(1000);
    expect(talk.rejectUploadsWithSize).toBe(0);

    // a start immediately followed by a stop: Talk must still leave "Starting"
    await talk.roomRequest(s, "quick1", start(1, "erin"));
    expect((await talk.roomRequest(s, "quick1", stop("erin"))).status).toBe(200);
    await waitUntil("quick1 stopped", () => talk.callbacks.find((c) => c.body.type === "stopped" && c.body.stopped.token === "quick1"));
    expect(talk.callbacks.filter((c) => c.body.failed?.token === "quick1")).toEqual([]);
  });

  test("a newer Talk gets the chunked upload (request-upload + WebDAV chunking v2 + the speaking times' PUT + store naming them)", async () => {
    talk.chunking = true;
    const call: SpeakingScript = { present: ["sessIvan"], steps: [
      { at: 800, nick: { session: "sessIvan", payload: { name: "Ivan", userid: "ivan" } } },
      { at: 1500, speaking: "sessIvan" },
      { at: 2600, stoppedSpeaking: "sessIvan" },
      { at: 3200, speaking: "sessIvan" },
    ] };
    talk.speaking.set("chunk1", call);
    try {
      expect((await talk.roomRequest(server.socket, "chunk1", start(1, "ivan"))).status).toBe(200);
      await waitUntil("started", () => talk.callbacks.find((c) => c.body.type === "started" && c.body.started.token === "chunk1"));
      await playedOut(talk, "chunk1", call);
      const stopAt = Date.now();
      await talk.roomRequest(server.socket, "chunk1", stop("ivan"));
      const upload = await waitUntil("chunked upload", () => talk.uploads.find((u) => u.token === "chunk1"));
      expect(upload).toMatchObject({ method: "chunked", owner: "ivan", chunks: 1 });
      expect(upload.fileName).toMatch(/^Recording .*\.mp4$/);
      expect(finalFiles().some((f) => Buffer.compare(f, upload.bytes) === 0)).toBe(true);
      const ivan = { participantId: "sessIvan", participantName: "Ivan", participantUserId: "ivan", startType: "speaking" };
      checkSidecar(upload, [{ ...ivan, start: 1, stop: 2, stopType: "stoppedSpeaking" }, { ...ivan, start: 3, stop: undefined, stopType: "stillSpeaking" }],
        talk.speakingFired.filter((f) => f.token === "chunk1"), stopAt, "talk-chunked.mp4");
      expect(talk.refused).toEqual([]);
    } finally {
      talk.chunking = false;
    }
  });

  test("a call page that answers 404 → failed callback (Talk leaves \"Starting\"), no upload", async () => {
    talk.notStarting.add("gone404");
    expect((await talk.roomRequest(server.socket, "gone404", start(1, "gina"))).status).toBe(200);
    const failed = await waitUntil("failed callback", () => talk.callbacks.find((c) => c.body.type === "failed" && c.body.failed.token === "gone404"));
    verifyCallback(failed);
    expect(failed.body).toEqual({ type: "failed", failed: { token: "gone404" } });
    await new Promise((r) => setTimeout(r, 1000));
    expect(talk.callbacks.filter((c) => JSON.stringify(c.body).includes("gone404")).map((c) => c.body.type)).toEqual(["failed"]);
    expect(talk.uploads.filter((u) => u.token === "gone404")).toEqual([]);
    expect(server.log()).toMatch(/answered HTTP 404/);
  });

  test("a Talk with a self-signed certificate: skipVerify records and delivers over HTTPS; without it nothing is trusted", async () => {
    expect((await selfSigned.roomRequest(server.socket, "tls1", start(1, "jo"))).status).toBe(200);
    await waitUntil("started over https", () => selfSigned.callbacks.find((c) => c.body.type === "started"));
    await new Promise((r) => setTimeout(r, 3000));
    await selfSigned.roomRequest(server.socket, "tls1", stop("jo"));
    const upload = await waitUntil("upload over https", () => selfSigned.uploads.find((u) => u.token === "tls1"));
    const file = join(server.dir, "tls.mp4");
    writeFileSync(file, upload.bytes);
    expect(colourFraction(frameRgb(file, 2), JOINED_RGB)).toBeGreaterThan(0.9); // the browser accepted the page and joined

    expect((await selfSignedStrict.roomRequest(server.socket, "tls2", start(1, "kim"))).status).toBe(200);
    await waitUntil("the certificate refused", () => /Cannot open the meeting page https:\/\/127\.0\.0\.1.*CERT|ERR_CERT/.test(server.log()) && /self-signed certificate|SELF_SIGNED/i.test(server.log()), 60_000);
    expect(selfSignedStrict.callbacks).toEqual([]);
    expect(selfSignedStrict.settingsRequests).toEqual([]);
  });

  test("a signaling server that rejects the internal secret → failed, with a reason that names the secret", async () => {
    expect((await badHpb.roomRequest(server.socket, "hpb1", start(1, "hank"))).status).toBe(200);
    const failed = await waitUntil("failed callback", () => badHpb.callbacks.find((c) => c.body.type === "failed"));
    expect(failed.body).toEqual({ type: "failed", failed: { token: "hpb1" } });
    expect(badHpb.joins).toEqual([{ token: "hpb1", ok: false, backend: badHpb.url }]);
    expect(server.log()).toMatch(/rejected meetrec's internal secret/);
    expect(server.log()).not.toContain("not-what-the-hpb-has");
  });

  test("Talk down for 30 s: the callbacks arrive, in order, once it is back", async () => {
    const s = server.socket;
    // Talk's web server goes down once the recorder has joined the call (page, settings and the
    // signaling server were reached): every Talk endpoint then answers 503.
    talk.onJoin = (token) => { if (token === "down1") talk.down = true; };
    const t0 = Date.now();
    expect((await talk.roomRequest(s, "down1", start(1, "frank"))).status).toBe(200);
    await waitUntil("Talk down after the join", () => talk.down);
    talk.onJoin = undefined;
    // the page itself and every other Talk path are down too, not only the callbacks
    for (const path of ["index.php/call/down1/recording", "ocs/v2.php/apps/spreed/api/v1/recording/backend", "public.php/dav/uploads/x/y", "no/such/path"]) {
      expect((await fetch(talk.url + path, { method: "POST" })).status, path).toBe(503);
    }
    await new Promise((r) => setTimeout(r, 6000));
    expect((await talk.roomRequest(s, "down1", stop("frank"))).status).toBe(200);
    await new Promise((r) => setTimeout(r, Math.max(0, 30_000 - (Date.now() - t0))));
    expect(talk.callbacks.filter((c) => JSON.stringify(c.body).includes("down1"))).toEqual([]);
    talk.down = false;
    const back = Date.now();
    const stopped = await waitUntil("stopped after Talk is back", () => talk.callbacks.find((c) => c.body.type === "stopped" && c.body.stopped.token === "down1"), 20_000);
    const started = talk.callbacks.find((c) => c.body.type === "started" && c.body.started.token === "down1")!;
    expect(started.at).toBeLessThanOrEqual(stopped.at);
    expect(started.at - back).toBeLessThan(5000);
    await waitUntil("upload after Talk is back", () => talk.uploads.find((u) => u.token === "down1"), 30_000);
    expect(talk.rooms.get("down1")?.recording).toBe(0);
  });

  test("a Talk from before MP4 recordings: the refused MP4 goes again at once as Matroska (stream copy); the next recording goes as Matroska straight away", async () => {
    const s = server.socket;
    expect((await oldTalk.roomRequest(s, "old1", start(1, "olga"))).status).toBe(200);
    await waitUntil("started", () => oldTalk.callbacks.find((c) => c.body.type === "started" && c.body.started.token === "old1"));
    await new Promise((r) => setTimeout(r, 3000));
    await oldTalk.roomRequest(s, "old1", stop("olga"));
    const upload = await waitUntil("Matroska upload", () => oldTalk.uploads.find((u) => u.token === "old1"));
    // exactly one refusal, Talk's answer to the MP4; then the same recording as Matroska, at once
    expect(oldTalk.refused.map((r) => `${r.status} ${r.why.split(":")[0]}`)).toEqual(["400 file_mimetype"]);
    oldTalk.refused.length = 0;
    expect(upload).toMatchObject({ method: "multipart", owner: "olga", contentType: "video/x-matroska" });
    expect(upload.fileName).toMatch(/^Recording \d{4}-\d{2}-\d{2} \d{2}-\d{2}-\d{2}\.mkv$/);
    const mkv = join(server.dir, "old.mkv");
    writeFileSync(mkv, upload.bytes);
    // the very packets of meetrec's MP4, in Matroska: no re-encode
    const packets = (f: string) => execFileSync("ffmpeg", ["-v", "error", "-i", f, "-map", "0", "-c", "copy", "-f", "framemd5", "-"]).toString()
      .split("\n").filter((l) => l && !l.startsWith("#")).map((l) => { const c = l.split(","); return `${c[0].trim()} ${c[5].trim()}`; });
    const mp4s = readdirSync(join(server.dataDir, "recordings")).map((id) => join(server.dataDir, "recordings", id, "recording.mp4")).filter((f) => existsSync(f));
    expect(mp4s.some((f) => JSON.stringify(packets(f)) === JSON.stringify(packets(mkv)))).toBe(true);
    expect(colourFraction(frameRgb(mkv, 2), JOINED_RGB)).toBeGreaterThan(0.9);
    expect(toneLevelsDb(audioSamples(mkv, 16000, 1, 2), 16000, [700])[0]).toBeGreaterThan(20);
    expect(readdirSync(join(server.dataDir, "recordings")).flatMap((id) => readdirSync(join(server.dataDir, "recordings", id))).filter((f) => f.includes(".talk-"))).toEqual([]);

    // remembered for this backend: an audio-only recording goes as Matroska with no MP4 tried first
    expect((await oldTalk.roomRequest(s, "old2", start(2, "olga"))).status).toBe(200);
    await waitUntil("started", () => oldTalk.callbacks.find((c) => c.body.type === "started" && c.body.started.token === "old2"));
    await new Promise((r) => setTimeout(r, 2000));
    await oldTalk.roomRequest(s, "old2", stop("olga"));
    const audio = await waitUntil("audio upload", () => oldTalk.uploads.find((u) => u.token === "old2"));
    expect(audio).toMatchObject({ contentType: "video/x-matroska" });
    expect(oldTalk.refused).toEqual([]);
    const mka = join(server.dir, "old-audio.mkv");
    writeFileSync(mka, audio.bytes);
    expect(probe(mka).video).toBeUndefined();
    expect(toneLevelsDb(audioSamples(mka, 16000, 0.5, 1.5), 16000, [700])[0]).toBeGreaterThan(20);
  });

  test("no Talk double refused anything meetrec sent (unknown paths, methods, auth, bytes)", () => {
    for (const t of [talk, badHpb, selfSigned, selfSignedStrict, oldTalk]) expect(t.refused).toEqual([]);
  });
});
