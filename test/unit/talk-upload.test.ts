/**
 * meetrec's Talk upload code (src/platforms/talk/upload.ts) against the Talk double, on loopback,
 * with real media files: the chunked upload over several chunks (a > 20 MiB file, so every chunk
 * rule of Nextcloud's chunking v2 runs), the multipart fallback, the speaking-times sidecar in
 * both, an older Talk that refuses MP4 (Matroska by stream copy, remembered), and the double
 * itself — that it
 * refuses what Talk refuses, with Talk's status and body, and in Talk's order when a request
 * breaks two rules at once (sources named in test/fixtures/talk-double.ts).
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { talkCallback } from "../../src/platforms/talk/index.js";
import { EgressPolicy } from "../../src/egress/index.js";
import type { Recording } from "../../src/store/index.js";
import { CHUNK_BYTES, TalkRequestError, deliverRecording, sendTalkCallback, speakingTimesDocument, speakingTimesJson, talkChecksum, talkRandom, talkUploadFile, uploadChunked, uploadRecordingToTalk, uploadToTalk, type ContainerMemory, type TalkContainer } from "../../src/platforms/talk/index.js";
import { TalkDouble } from "../fixtures/talk-double.js";

const SECRET = randomBytes(24).toString("hex");
const MIB = 1024 * 1024;
let talk: TalkDouble;
let dir: string;
let big: string; // a real MP4 of > 2 chunks
let small: string; // a real MP4 of one chunk
let m4a: string; // an audio-only recording as meetrec finalizes it
const conn = { egress: new EgressPolicy(["127.0.0.0/8"]), named: true };
const alice = { type: "users", id: "alice" };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "meetrec-talk-upload-"));
  big = join(dir, "big.mp4");
  small = join(dir, "small.mp4");
  m4a = join(dir, "recording.m4a");
  const ff = (...args: string[]) => execFileSync("ffmpeg", ["-v", "error", "-y", ...args]);
  // noise does not compress: 2.6 s of lossless 640×360 is ≈ 22 MiB
  ff("-f", "lavfi", "-i", "nullsrc=s=640x360:r=25,geq=random(1)*255:128:128", "-t", "2.6", "-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-pix_fmt", "yuv420p", "-movflags", "+faststart", big);
  ff("-f", "lavfi", "-i", "testsrc2=s=320x180:r=15", "-t", "1", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-movflags", "+faststart", small);
  ff("-f", "lavfi", "-i", "sine=f=700:d=2", "-c:a", "aac", m4a);
  talk = new TalkDouble(SECRET);
  await talk.start();
});

afterAll(async () => {
  await talk?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

afterEach(() => {
  talk.chunking = false;
});

const base = () => talk.url.replace(/\/$/, "");
const args = (token: string, file: string, fileName = "Recording 2026-12-01 10-00-00.mp4") =>
  ({ secret: SECRET, backendUrl: base(), token, owner: "alice", file, fileName, contentType: "video/mp4", timeoutMs: 30_000, conn });
/** Talk's side of a start, so the conversation exists and "alice" is its owner. */
const room = (token: string) => talk.expectStart(token, 1, "alice", alice);
/** The refusals a block of code caused. */
async function refusedBy(fn: () => Promise<unknown>): Promise<{ result: unknown; refused: typeof talk.refused }> {
  const before = talk.refused.length;
  const result = await fn().catch((e: unknown) => { if (e instanceof TalkRequestError) return e; throw e; });
  return { result, refused: talk.refused.slice(before) };
}

describe("meetrec's upload code against the Talk double", () => {
  test("a 22 MiB recording goes up in 3 chunks (10 + 10 + 2 MiB), byte for byte; nothing refused", async () => {
    talk.chunking = true;
    room("big1");
    const { result, refused } = await refusedBy(() => uploadRecordingToTalk(args("big1", big)));
    expect(refused).toEqual([]);
    expect(result).toMatch(/uploaded in 3 chunk\(s\)/);
    const up = talk.uploads.find((u) => u.token === "big1")!;
    expect(up).toMatchObject({ method: "chunked", chunks: 3, contentType: "video/mp4", owner: "alice" });
    expect(Buffer.compare(up.bytes, readFileSync(big))).toBe(0);
    expect(CHUNK_BYTES).toBeGreaterThanOrEqual(5 * MIB);
  });

  test("chunks under 5 MiB before the last are refused at MOVE (S3 EntityTooSmall → 500)", async () => {
    talk.chunking = true;
    room("tiny1");
    const { result, refused } = await refusedBy(() => uploadChunked(args("tiny1", big), 1 * MIB));
    expect(result).toBeInstanceOf(TalkRequestError);
    expect((result as TalkRequestError).status).toBe(500);
    expect(refused.map((r) => [r.method, r.status])).toEqual([["MOVE", 500]]);
    expect(refused[0].why).toMatch(/EntityTooSmall: chunk 1 has 1048576 bytes/);
  });

  test("an older Talk (404 on request-upload): the big file goes up as one multipart store", async () => {
    room("old1");
    const { result, refused } = await refusedBy(() => uploadRecordingToTalk(args("old1", big)));
    expect(refused).toEqual([]);
    expect(result).toMatch(/uploaded as/);
    expect(talk.uploads.find((u) => u.token === "old1")).toMatchObject({ method: "multipart", contentType: "video/mp4", declaredType: "video/mp4" });
  });

  test("an audio-only M4A: Talk refuses it (file_mimetype, file_extension); talkUploadFile's MP4 is stored", async () => {
    room("m4a1");
    const raw = await refusedBy(() => uploadToTalk({ ...args("m4a1", m4a, "Recording 2026-12-01 10-00-00.m4a"), contentType: "audio/mp4" }));
    expect((raw.result as TalkRequestError).talkError).toBe("file_mimetype");
    expect(raw.refused[0].why).toMatch(/sniffed as audio\/x-m4a/);
    talk.chunking = true;
    const viaChunks = await refusedBy(() => uploadChunked({ ...args("m4a1", m4a, "Recording 2026-12-01 10-00-00.m4a"), contentType: "audio/mp4" }));
    expect((viaChunks.result as TalkRequestError).talkError).toBe("file_extension");
    talk.refused.length = 0;

    const upload = await talkUploadFile(m4a);
    try {
      expect(execFileSync("file", ["-b", "--mime-type", upload.path]).toString().trim()).toBe("video/mp4");
      for (const chunking of [true, false]) {
        talk.chunking = chunking;
        room(`m4a${chunking ? "c" : "m"}`);
        const ok = await refusedBy(() => uploadRecordingToTalk({ ...args(`m4a${chunking ? "c" : "m"}`, upload.path, `Recording 2026-12-01 10-00-00.${upload.ext}`), contentType: upload.contentType }));
        expect(ok.refused).toEqual([]);
      }
    } finally {
      await upload.cleanup();
    }
    expect(readdirSync(dir).filter((f) => f.includes("talk-"))).toEqual([]);
  });
});

describe("meetrec's callbacks against the Talk double", () => {
  test("started / stopped as talkCallback builds them carry Talk's status and actors: video and audio, with and without a stop actor", async () => {
    const bob = { type: "users", id: "bob" };
    for (const [token, status, stopActor] of [["cbv", 1, bob], ["cba", 2, undefined]] as const) {
      talk.expectStart(token, status, "alice", alice);
      const rec = (s: Recording["status"]) => ({ status: s, metadata: { talk: { token, backendUrl: base(), owner: "alice", actor: alice, status, stopActor } } }) as unknown as Recording;
      const { refused } = await refusedBy(async () => {
        await sendTalkCallback(SECRET, base(), talkCallback(rec("recording"), "starting"), 5000, conn);
        expect(talk.rooms.get(token)?.recording).toBe(status);
        talk.expectStop(token, stopActor ?? null);
        await sendTalkCallback(SECRET, base(), talkCallback(rec("stopping"), "recording"), 5000, conn);
      });
      expect(refused, token).toEqual([]);
      expect(talk.rooms.get(token)?.recording).toBe(0);
    }
  });
});

/** A raw request to the double. */
async function raw(method: string, path: string, headers: Record<string, string> = {}, body?: string | Buffer | FormData): Promise<{ status: number; text: string }> {
  const res = await fetch(talk.url + path.replace(/^\//, ""), { method, headers, body: body as BodyInit | undefined });
  return { status: res.status, text: await res.text() };
}
/** Talk's recording-server headers over `signed` (random ‖ signed), optionally broken. */
function signed(data: string, o: { random?: string; checksum?: string; ocs?: boolean } = {}): Record<string, string> {
  const random = o.random ?? talkRandom(64);
  return {
    ...(o.ocs === false ? {} : { "OCS-APIRequest": "true" }), "User-Agent": "meetrec/0.1.0 test",
    "Talk-Recording-Random": random, "Talk-Recording-Checksum": o.checksum ?? talkChecksum(SECRET, random, data),
  };
}
function form(owner: string | undefined, bytes: Buffer, name: string, type = "video/mp4"): FormData {
  const f = new FormData();
  if (owner !== undefined) f.set("owner", owner);
  f.set("file", new File([new Uint8Array(bytes)], name, { type }));
  return f;
}
const storePath = (token: string) => `/ocs/v2.php/apps/spreed/api/v1/recording/${token}/store`;
const BACKEND = "/ocs/v2.php/apps/spreed/api/v1/recording/backend";

describe("the double refuses what Talk refuses", () => {
  afterEach(() => {
    talk.refused.length = 0;
  });

  test("store sniffs the bytes: empty → empty_file; text declared video/mp4 → file_mimetype; MP4 named .webm → file_extension", async () => {
    room("sniff1");
    const mp4 = readFileSync(small);
    const cases: [Buffer, string, string, string][] = [
      [Buffer.alloc(0), "a.mp4", "video/mp4", "empty_file"],
      [Buffer.from("not a video at all\n"), "a.mp4", "video/mp4", "file_mimetype"],
      [readFileSync(m4a), "a.mp4", "video/mp4", "file_mimetype"],
      [mp4, "a.webm", "video/webm", "file_extension"],
    ];
    for (const [bytes, name, type, code] of cases) {
      const r = await raw("POST", storePath("sniff1"), signed("sniff1"), form("alice", bytes, name, type));
      expect([r.status, JSON.parse(r.text).ocs.data.error], `${name} ${code}`).toEqual([400, code]);
    }
    // the declared type is not what counts: a real MP4 declared as text is stored as video/mp4
    expect((await raw("POST", storePath("sniff1"), signed("sniff1"), form("alice", mp4, "a.mp4", "text/plain"))).status).toBe(200);
    expect(talk.uploads.at(-1)).toMatchObject({ contentType: "video/mp4", declaredType: "text/plain" });
  });

  test("started: the status and actor Talk asked for; a malformed actor is a 500; a room not starting is 404", async () => {
    const cb = (body: unknown) => raw("POST", BACKEND, { ...signed(JSON.stringify(body)), "Content-Type": "application/json" }, JSON.stringify(body));
    talk.expectStart("st1", 2, "alice", alice);
    expect((await cb({ type: "started", started: { token: "st1", status: 2, actor: "alice" } })).status).toBe(500);
    expect((await cb({ type: "started", started: { token: "st1", status: 2 } })).status).toBe(500);
    expect((await cb({ type: "started", started: { token: "st1", status: "2", actor: alice } })).status).toBe(500);
    expect(talk.refused.map((r) => r.status)).toEqual([500, 500, 500]);
    talk.refused.length = 0;
    // Talk stores a wrong status (it shows a video recording as audio): answered 200, but listed
    expect((await cb({ type: "started", started: { token: "st1", status: 1, actor: { type: "guests", id: "alice" } } })).status).toBe(200);
    expect(talk.refused.map((r) => r.why)).toEqual([
      "Talk accepts this, but: started.status 1, but Talk asked for 2",
      'Talk accepts this, but: started.actor {"type":"guests","id":"alice"} is not the start\'s {"type":"users","id":"alice"}',
    ]);
    talk.refused.length = 0;
    // now recording: a second started is "Room not found" (Talk only takes it while starting)
    const again = await cb({ type: "started", started: { token: "st1", status: 2, actor: alice } });
    expect([again.status, JSON.parse(again.text).ocs.data.error.code]).toEqual([404, "no_such_room"]);
    expect((await cb({ type: "stopped", stopped: { token: "nosuch" } })).status).toBe(404);
    expect((await cb({ type: "paused", paused: { token: "st1" } })).status).toBe(400);
    expect(talk.refused.map((r) => r.status)).toEqual([404, 404, 400]);
  });

  test("WebDAV: no chunk or MOVE into an upload folder never MKCOL'd, nor after its MOVE", async () => {
    talk.chunking = true;
    room("dav1");
    const ru = await raw("POST", "/ocs/v2.php/apps/spreed/api/v1/recording/dav1/request-upload", { ...signed("dav1"), "Content-Type": "application/json" }, JSON.stringify({ owner: "alice", fileName: "r.mp4" }));
    const share = JSON.parse(ru.text).ocs.data as { token: string; password: string };
    const h = { Authorization: `Basic ${Buffer.from(`${share.token}:${share.password}`).toString("base64")}`, Destination: `${talk.url}public.php/dav/files/${share.token}/r.mp4`, "OC-Total-Length": "4" };
    const up = `/public.php/dav/uploads/${share.token}`;
    expect((await raw("PUT", `${up}/never/1`, h, "abcd")).status).toBe(409);
    expect((await raw("MOVE", `${up}/never/.file`, h)).status).toBe(404);
    expect((await raw("MKCOL", `${up}/u1`, h)).status).toBe(201);
    expect((await raw("MKCOL", `${up}/u1`, h)).status).toBe(405);
    expect((await raw("PUT", `${up}/u1/0`, h, "abcd")).status).toBe(400); // chunks are 1…10000
    expect((await raw("PUT", `${up}/u1/1`, h, "abcd")).status).toBe(201);
    expect((await raw("PUT", `${up}/u1/1`, { ...h, Destination: `${talk.url}public.php/dav/files/${share.token}/other.mp4` }, "abcd")).status).toBe(400);
    expect((await raw("MOVE", `${up}/u1/.file`, h)).status).toBe(201);
    expect((await raw("PUT", `${up}/u1/2`, h, "abcd")).status).toBe(409); // the folder went with the MOVE
    expect((await raw("MOVE", `${up}/u1/.file`, h)).status).toBe(404);
    expect((await raw("PUT", `${up}/u1/1`, { ...h, Authorization: "Basic eDp5" }, "abcd")).status).toBe(401);
    expect(talk.refused.map((r) => `${r.method} ${r.status}`)).toEqual(["PUT 409", "MOVE 404", "MKCOL 405", "PUT 400", "PUT 400", "PUT 409", "MOVE 404", "PUT 401"]);
    expect(talk.refused[5].why).toMatch(/already moved/);
  });

  test("unknown paths, wrong methods and bad auth are listed as refused; Talk down answers 503 everywhere", async () => {
    expect((await raw("GET", "/status.php")).status).toBe(404);
    expect((await raw("GET", BACKEND, { "OCS-APIRequest": "true" })).status).toBe(405);
    expect((await raw("POST", BACKEND, { "OCS-APIRequest": "true" }, "{}")).status).toBe(403);
    const callback = await refusedBy(() => sendTalkCallback(SECRET, `${base()}/index.php`, { type: "failed", failed: { token: "x" } }, 5000, conn));
    expect((callback.result as TalkRequestError).status).toBe(404);
    expect(talk.refused.map((r) => `${r.method} ${r.path} ${r.status} ${r.why}`)).toEqual([
      "GET /status.php 404 unknown path",
      `GET ${BACKEND} 405 GET not allowed on ${BACKEND}`,
      `POST ${BACKEND} 403 Talk-Recording-Random missing or shorter than 32`,
      `POST /index.php${BACKEND} 404 unknown path`,
    ]);
    talk.refused.length = 0;
    talk.down = true;
    try {
      for (const [m, p] of [["GET", "/index.php/call/abc/recording"], ["GET", "/ocs/v2.php/apps/spreed/api/v3/signaling/settings"], ["POST", BACKEND], ["POST", storePath("x")], ["MKCOL", "/public.php/dav/uploads/s/u"], ["GET", "/anything"]]) {
        expect((await raw(m, p)).status, `${m} ${p}`).toBe(503);
      }
    } finally {
      talk.down = false;
    }
    expect(talk.refused).toEqual([]); // a test's own "down" is not a refusal
  });
});

describe("two broken rules at once: the double answers what Talk checks first", () => {
  afterEach(() => {
    talk.refused.length = 0;
  });

  test("backend: wrong checksum and unknown room → 403 (authentication before the room lookup); no OCS header and wrong checksum → 412", async () => {
    const body = JSON.stringify({ type: "started", started: { token: "nosuchroom", status: 1, actor: alice } });
    expect((await raw("POST", BACKEND, signed(body, { checksum: "0".repeat(64) }), body)).status).toBe(403);
    expect((await raw("POST", BACKEND, signed(body, { checksum: "0".repeat(64), ocs: false }), body)).status).toBe(412);
    expect((await raw("POST", BACKEND, signed(body, { random: "short" }), body)).status).toBe(403);
    expect((await raw("POST", BACKEND, signed(body), body)).status).toBe(404); // signed right: now the room counts
    // unknown type and unknown room: the type is looked at first
    const paused = JSON.stringify({ type: "paused", paused: { token: "nosuchroom" } });
    expect((await raw("POST", BACKEND, signed(paused), paused)).status).toBe(400);
  });

  test("store: unknown room and wrong checksum → 404 (#[RequireRoom] runs before the checksum); known room → 401", async () => {
    const f = () => form("alice", readFileSync(small), "a.mp4");
    expect((await raw("POST", storePath("nosuchroom"), signed("nosuchroom", { checksum: "0".repeat(64) }), f())).status).toBe(404);
    room("order1");
    expect((await raw("POST", storePath("order1"), signed("order1", { checksum: "0".repeat(64) }), f())).status).toBe(401);
    expect((await raw("POST", storePath("order1"), signed("order1", { checksum: "0".repeat(64), ocs: false }), f())).status).toBe(412);
  });

  test("store: bad checksum + empty file → 401; wrong owner + empty file → owner_participant; empty + not a video → empty_file; no owner + bad bytes → size", async () => {
    room("order2");
    const code = async (r: Promise<{ status: number; text: string }>) => { const x = await r; return x.status === 400 ? JSON.parse(x.text).ocs.data.error : x.status; };
    expect(await code(raw("POST", storePath("order2"), signed("order2", { checksum: "f".repeat(64) }), form("alice", Buffer.alloc(0), "a.mp4")))).toBe(401);
    expect(await code(raw("POST", storePath("order2"), signed("order2"), form("mallory", Buffer.alloc(0), "a.mp4")))).toBe("owner_participant");
    expect(await code(raw("POST", storePath("order2"), signed("order2"), form("alice", Buffer.alloc(0), "a.txt", "text/plain")))).toBe("empty_file");
    expect(await code(raw("POST", storePath("order2"), signed("order2"), form(undefined, Buffer.from("text"), "a.txt")))).toBe("size");
    expect(await code(raw("POST", storePath("order2"), signed("order2"), form("alice", readFileSync(m4a), "a.webm")))).toBe("file_mimetype"); // type before extension
  });

  test("WebDAV: bad auth + no MKCOL → 401; a small chunk + a wrong OC-Total-Length → 500 (S3 completes before the size is compared)", async () => {
    talk.chunking = true;
    room("order3");
    const ru = await raw("POST", "/ocs/v2.php/apps/spreed/api/v1/recording/order3/request-upload", { ...signed("order3"), "Content-Type": "application/json" }, JSON.stringify({ owner: "alice", fileName: "r.mp4" }));
    const share = JSON.parse(ru.text).ocs.data as { token: string; password: string };
    const h = { Authorization: `Basic ${Buffer.from(`${share.token}:${share.password}`).toString("base64")}`, Destination: `${talk.url}public.php/dav/files/${share.token}/r.mp4`, "OC-Total-Length": "999" };
    const up = `/public.php/dav/uploads/${share.token}`;
    expect((await raw("PUT", `${up}/nomkcol/1`, { ...h, Authorization: "Basic eDp5" }, "x")).status).toBe(401);
    expect((await raw("MKCOL", `${up}/u`, h)).status).toBe(201);
    expect((await raw("PUT", `${up}/u/1`, h, "abc")).status).toBe(201);
    expect((await raw("PUT", `${up}/u/2`, h, "abc")).status).toBe(201);
    const move = await raw("MOVE", `${up}/u/.file`, h);
    expect(move.status).toBe(500);
    expect(move.text).toMatch(/EntityTooSmall/);
    // request-upload: a wrong owner and a wrong extension → owner_participant (the owner first)
    const bad = await raw("POST", "/ocs/v2.php/apps/spreed/api/v1/recording/order3/request-upload", { ...signed("order3"), "Content-Type": "application/json" }, JSON.stringify({ owner: "mallory", fileName: "r.m4a" }));
    expect(JSON.parse(bad.text).ocs.data.error).toBe("owner_participant");
  });
});


describe("speaking times and older Talks", () => {
  afterEach(() => {
    talk.chunking = false;
    talk.acceptsMp4 = true;
    talk.speakingTimes = true;
    talk.refused.length = 0;
  });

  const FILE = "Recording 2026-12-01 10-00-00.mp4";
  const SIDECAR = ".Recording 2026-12-01 10-00-00 speaking times.json";
  const doc = speakingTimesDocument([
    { participantId: "sA", participantName: "Alice", participantUserId: "alice", startMs: 1_000_500, stopMs: 1_001_700, startType: "speaking", stopType: "stoppedSpeaking" },
    { participantId: "sB", participantName: "", participantUserId: "", startMs: 1_002_000, stopMs: 1_002_900, startType: "participantFlagsChanged", stopType: "stillSpeaking" },
  ], [{ fileMs: 0, wallMs: 1_000_000, durationMs: 3000 }])!;
  const sidecar = speakingTimesJson(doc);
  /** A container memory in a variable, as the store keeps it per backend. */
  const memory = () => {
    const m: { value?: TalkContainer; writes: TalkContainer[] } = { writes: [] };
    return { m, memory: { get: async () => m.value, remember: async (c: TalkContainer) => { m.value = c; m.writes.push(c); } } };
  };
  const recording = (token: string, file: string, setting: "auto" | TalkContainer, mem: ContainerMemory, withSidecar = true) =>
    deliverRecording({ secret: SECRET, backendUrl: base(), token, owner: "alice", file, startedAt: new Date("2026-12-01T10:00:00Z"), setting, memory: mem, ffmpegPath: "ffmpeg", timeoutMs: 30_000, conn, ...(withSidecar ? { sidecar } : {}) });
  /** The packets' hashes: a stream copy keeps every one (a re-encode would not). */
  const packets = (file: string) => execFileSync("ffmpeg", ["-v", "error", "-i", file, "-map", "0", "-c", "copy", "-f", "framemd5", "-"]).toString()
    .split("\n").filter((l) => l && !l.startsWith("#")).map((l) => l.split(",").map((x) => x.trim())).map((c) => `${c[0]} ${c[5]}`);

  test("the sidecar goes with both flows: chunked as one WebDAV PUT named in store's intervalsFileName, multipart as the intervalsFile part", async () => {
    for (const chunking of [true, false]) {
      talk.chunking = chunking;
      const token = `side${chunking ? "c" : "m"}`;
      room(token);
      const { result, refused } = await refusedBy(() => uploadRecordingToTalk({ ...args(token, small, FILE), sidecar }));
      expect(refused, token).toEqual([]);
      expect(result).toContain(`with its speaking times "${SIDECAR}"`);
      const up = talk.uploads.find((u) => u.token === token)!;
      expect(up).toMatchObject({ method: chunking ? "chunked" : "multipart", fileName: FILE, intervals: { fileName: SIDECAR, json: doc } });
    }
    // without a sidecar nothing is sent or named (no "not found" for Talk to log)
    talk.chunking = true;
    room("side0");
    expect((await refusedBy(() => uploadRecordingToTalk(args("side0", small, FILE)))).refused).toEqual([]);
    expect(talk.uploads.find((u) => u.token === "side0")!.intervals).toBeUndefined();
  });

  test("the double holds the sidecar to the protocol: its name, its JSON, relative times; a create-only share overwrites nothing", async () => {
    room("sidebad");
    const send = async (name: string, json: string) => {
      const f = form("alice", readFileSync(small), FILE);
      f.set("intervalsFile", new File([json], name, { type: "application/json" }));
      return raw("POST", storePath("sidebad"), signed("sidebad"), f);
    };
    expect((await send("Recording 2026-12-01 10-00-00.json", sidecar)).status).toBe(200); // an earlier draft's name
    expect((await send(SIDECAR, "{not json")).status).toBe(200);
    const late = { ...doc, intervals: [{ ...doc.intervals[0], startTimestampRelative: 900 }] };
    expect((await send(SIDECAR, JSON.stringify(late))).status).toBe(200);
    expect(talk.refused.map((r) => r.why)).toEqual([
      `Talk accepts this, but: speaking times: named "Recording 2026-12-01 10-00-00.json", not "${SIDECAR}"`,
      "Talk accepts this, but: intervalsFile is not a named file of JSON (Talk ignores it)",
      "Talk accepts this, but: speaking times: interval 0: startTimestampRelative 900 is later than startTimestamp − recordingStartTimestamp (500)",
    ]);
    talk.refused.length = 0;
    talk.chunking = true;
    room("sidedav");
    const ru = await raw("POST", "/ocs/v2.php/apps/spreed/api/v1/recording/sidedav/request-upload", { ...signed("sidedav"), "Content-Type": "application/json" }, JSON.stringify({ owner: "alice", fileName: FILE }));
    const share = JSON.parse(ru.text).ocs.data as { token: string; password: string };
    const put = (h: Record<string, string> = {}) => raw("PUT", `/public.php/dav/files/${share.token}/${encodeURIComponent(SIDECAR)}`, { Authorization: `Basic ${Buffer.from(`${share.token}:${share.password}`).toString("base64")}`, ...h }, sidecar);
    expect((await put()).status).toBe(201);
    expect((await put()).status).toBe(403);
    expect((await put({ Authorization: "Basic eDp5" })).status).toBe(401);
    expect(talk.refused.map((r) => `${r.method} ${r.status}`)).toEqual(["PUT 403", "PUT 401"]);
  });

  test("an older Talk (before spreed PR #17635) answers every MP4 with 400 file_mimetype, has no request-upload and ignores the sidecar", async () => {
    talk.oldTalk();
    room("old2");
    const r = await raw("POST", storePath("old2"), { ...signed("old2"), Accept: "application/json" }, form("alice", readFileSync(small), FILE));
    expect([r.status, JSON.parse(r.text)]).toEqual([400, { ocs: { meta: { status: "failure", statuscode: 400, message: "" }, data: { error: "file_mimetype" } } }]);
    expect((await raw("POST", "/ocs/v2.php/apps/spreed/api/v1/recording/old2/request-upload", { ...signed("old2"), "Content-Type": "application/json" }, "{}")).status).toBe(404);
  });

  test("auto: an MP4 refused for its type goes again at once as Matroska, by stream copy; Matroska is remembered, so the next one goes as Matroska straight away", async () => {
    talk.oldTalk();
    const { m, memory: mem } = memory();
    room("oldauto1");
    const first = await refusedBy(() => recording("oldauto1", small, "auto", mem));
    expect(first.result).toMatch(/uploaded as "Recording 2026-12-01 10-00-00\.mkv".*refused the MP4.*Matroska/);
    expect(first.refused.map((x) => x.why)).toEqual([`file_mimetype: ${FILE} sniffed as video/mp4 (declared video/mp4)`]);
    const up = talk.uploads.find((u) => u.token === "oldauto1")!;
    expect(up).toMatchObject({ method: "multipart", fileName: "Recording 2026-12-01 10-00-00.mkv", contentType: "video/x-matroska", intervalsIgnored: SIDECAR });
    const mkv = join(dir, "oldauto1.mkv");
    writeFileSync(mkv, up.bytes);
    expect(packets(mkv)).toEqual(packets(small)); // every packet as it was: no re-encode
    expect(m.writes).toEqual(["mkv"]);
    room("oldauto2");
    const second = await refusedBy(() => recording("oldauto2", small, "auto", mem));
    expect(second.refused).toEqual([]);
    expect(second.result).not.toMatch(/refused/);
    expect(talk.uploads.find((u) => u.token === "oldauto2")!.contentType).toBe("video/x-matroska");
    // an audio-only recording (M4A, which no Talk takes) goes as Matroska too
    room("oldaudio");
    expect((await refusedBy(() => recording("oldaudio", m4a, "auto", mem))).refused).toEqual([]);
    expect(talk.uploads.find((u) => u.token === "oldaudio")).toMatchObject({ contentType: "video/x-matroska", fileName: "Recording 2026-12-01 10-00-00.mkv" });
    expect(m.writes).toEqual(["mkv"]);
    expect(readdirSync(dir).filter((f) => f.includes(".talk-"))).toEqual([]); // the remuxed copies are gone
  });

  test("a Talk with the chunked upload but without MP4: request-upload refuses .mp4, the single upload file_mimetype; the Matroska copy goes in chunks", async () => {
    talk.chunking = true;
    talk.acceptsMp4 = false;
    const { m, memory: mem } = memory();
    room("chunkold");
    const r = await refusedBy(() => recording("chunkold", small, "auto", mem));
    expect(r.refused.map((x) => `${x.path.split("/").at(-1)} ${x.why.split(":")[0]}`)).toEqual(["request-upload file_extension", "store file_mimetype"]);
    expect(talk.uploads.find((u) => u.token === "chunkold")).toMatchObject({ method: "chunked", contentType: "video/x-matroska", intervals: { fileName: SIDECAR, json: doc } });
    expect(m.value).toBe("mkv");
  });

  test("mp4: a refusal is an error that says to use auto or mkv, and nothing is remembered; mkv: always Matroska; a success is remembered, so auto returns to MP4", async () => {
    talk.oldTalk();
    const { m, memory: mem } = memory();
    room("forcemp4");
    const err = (await refusedBy(() => recording("forcemp4", small, "mp4", mem))).result as TalkRequestError;
    expect(err).toBeInstanceOf(TalkRequestError);
    expect(err.message).toMatch(/file_mimetype.*set talk\.container to auto or mkv/);
    expect(m.writes).toEqual([]);
    talk.acceptsMp4 = true;
    talk.speakingTimes = true;
    room("forcemkv");
    await recording("forcemkv", small, "mkv", mem);
    expect(talk.uploads.find((u) => u.token === "forcemkv")!.contentType).toBe("video/x-matroska");
    expect(m.value).toBe("mkv");
    room("backtomp4");
    await recording("backtomp4", small, "mp4", mem); // the operator upgraded Talk and says so
    room("auto3");
    await recording("auto3", small, "auto", mem);
    expect(talk.uploads.find((u) => u.token === "auto3")!.contentType).toBe("video/mp4");
    expect(m.writes).toEqual(["mkv", "mp4"]);
  });
});
