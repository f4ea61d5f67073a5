/**
 * Talk requests cannot be replayed: a `Talk-Recording-Random` is accepted once per backend within
 * `talk.replayWindowSeconds`, whatever conversation token the path names, and only once its
 * checksum verified. Against a real App (SQLite store) through Fastify's inject; admission is held
 * shut (free-memory floor out of reach) so nothing records and no browser starts.
 */
import { randomBytes } from "node:crypto";
import { Writable } from "node:stream";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, test, vi } from "vitest";
import { buildServer } from "../../src/api/index.js";
import { EmbeddedHost } from "../../src/hosts/index.js";
import { parseConfig } from "../../src/config/index.js";
import { talkChecksum } from "../../src/platforms/talk/index.js";
import { createLogger } from "../../src/util/log.js";

const SECRET = randomBytes(24).toString("hex");
const TALK_URL = "https://talk.invalid/";
let dir: string;
let app: EmbeddedHost;
let server: FastifyInstance;
let clock = new Date("2026-03-01T12:00:00.000Z");
const logLines: Record<string, unknown>[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "meetrec-talk-replay-"));
  const config = parseConfig({
    dataDir: dir,
    capacity: { minFreeMemoryBytes: Number.MAX_SAFE_INTEGER }, // nothing is admitted: recordings stay queued
    backends: { cloud: { talk: { url: TALK_URL, secret: SECRET } } },
  });
  app = await EmbeddedHost.start(config, createLogger("silent"), { now: () => clock });
  const sink = new Writable({ write(chunk, _enc, done) { logLines.push(JSON.parse(String(chunk))); done(); } });
  server = await buildServer(app, pino({ level: "warn" }, sink));
});

afterAll(async () => {
  await server?.close();
  await app?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A request as Talk signs it: fresh 64-character random, checksum over random ‖ body. */
function signed(body: unknown) {
  const payload = JSON.stringify(body);
  const random = randomBytes(32).toString("hex");
  return { payload, random, checksum: talkChecksum(SECRET, random, payload) };
}

const send = (token: string, r: { payload: string; random: string; checksum: string }) => server.inject({
  method: "POST", url: `/api/v1/room/${token}`, payload: r.payload,
  headers: { "content-type": "application/json", "talk-recording-backend": TALK_URL, "talk-recording-random": r.random, "talk-recording-checksum": r.checksum },
});

const start = { type: "start", start: { status: 1, owner: "alice", actor: { type: "users", id: "alice" } } };

/** Recordings of conversation `token`. */
async function recordingsOf(token: string) {
  return (await app.store.list({ backend: "cloud" })).filter((r) => (r.metadata.talk as { token?: string } | undefined)?.token === token);
}

describe("Talk replay protection", () => {
  test("the same signed start twice: 200, then 403 with a log line saying why, and nothing new", async () => {
    const req = signed(start);
    const first = await send("room1", req);
    expect(first.statusCode).toBe(200);
    expect(first.json()).toEqual({});
    expect(await recordingsOf("room1")).toHaveLength(1);

    logLines.length = 0;
    const again = await send("room1", req);
    expect(again.statusCode).toBe(403);
    expect(again.headers["content-type"]).toMatch(/^application\/json/);
    expect(again.json().error).toMatch(/replayed request/);
    expect(await recordingsOf("room1")).toHaveLength(1);
    const line = logLines.find((l) => l.reason === "replayed Talk-Recording-Random");
    expect(line).toMatchObject({ backend: "cloud", talkBackend: "https://talk.invalid", talkToken: "room1" });
    const logged = JSON.stringify(logLines);
    expect(logged).not.toContain(SECRET);
    expect(logged).not.toContain(req.checksum);
  });

  test("the same random sent to another conversation token → 403, nothing created there", async () => {
    const req = signed(start);
    expect((await send("room2", req)).statusCode).toBe(200);
    const moved = await send("room3", req);
    expect(moved.statusCode).toBe(403);
    expect(moved.json().error).toMatch(/replayed request/);
    expect(await recordingsOf("room3")).toHaveLength(0);
  });

  test("a request that failed its checksum does not use up its random", async () => {
    const req = signed(start);
    expect((await send("room4", { ...req, checksum: "0".repeat(64) })).statusCode).toBe(403);
    expect(await recordingsOf("room4")).toHaveLength(0);
    expect((await send("room4", req)).statusCode).toBe(200);
    expect(await recordingsOf("room4")).toHaveLength(1);
  });

  test("a request answered 5xx releases its random, so Talk's retry (same random) goes through", async () => {
    const req = signed(start);
    const spy = vi.spyOn(app.talk, "start").mockRejectedValueOnce(new Error("store unreachable"));
    expect((await send("room5", req)).statusCode).toBe(500);
    spy.mockRestore();
    expect(await recordingsOf("room5")).toHaveLength(0);
    expect((await send("room5", req)).statusCode).toBe(200);
    expect(await recordingsOf("room5")).toHaveLength(1);
  });

  test("after the replay window a random is accepted again", async () => {
    const req = signed(start);
    expect((await send("room6", req)).statusCode).toBe(200);
    clock = new Date(clock.getTime() + (app.config.talk.replayWindowSeconds - 1) * 1000);
    expect((await send("room7", req)).statusCode).toBe(403);
    clock = new Date(clock.getTime() + 1000);
    expect((await send("room7", req)).statusCode).toBe(200);
    expect(await recordingsOf("room7")).toHaveLength(1);
  });

  test("the window is at least 15 minutes", () => {
    expect(app.config.talk.replayWindowSeconds).toBe(900);
    expect(() => parseConfig({ talk: { replayWindowSeconds: 60 } })).toThrow(/talk\.replayWindowSeconds: must be at least 900/);
  });
});
