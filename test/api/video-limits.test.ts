/**
 * The API refuses a `video` above the backend's ceilings (422 `validation_failed`, one entry per
 * field) and creates nothing; within them the recording is created with the merged settings.
 * A real App (SQLite) through Fastify's inject; admission is held shut so nothing records.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { buildServer } from "../../src/api/index.js";
import { EmbeddedHost } from "../../src/hosts/index.js";
import { parseConfig } from "../../src/config/index.js";
import { createLogger } from "../../src/util/log.js";

const OPEN = "open-backend-key-0123456789";
const BIG = "big-backend-key-0123456789a";
const SMALL = "small-backend-key-0123456789";
let dir: string;
let app: EmbeddedHost;
let server: FastifyInstance;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "meetrec-video-limits-"));
  app = await EmbeddedHost.start(parseConfig({
    dataDir: dir,
    capacity: { minFreeMemoryBytes: Number.MAX_SAFE_INTEGER }, // nothing is admitted: created recordings stay queued
    backends: {
      open: { apiKey: OPEN },
      big: { apiKey: BIG, videoLimits: { width: 3840, height: 2160, fps: 60, bitrateKbps: 20000 } },
      small: { apiKey: SMALL, videoLimits: { width: 1280, height: 720, fps: 15 }, video: { fps: 15 } },
    },
  }), createLogger("silent"));
  server = await buildServer(app, createLogger("silent"));
});

afterAll(async () => {
  await server?.close();
  await app?.close();
  rmSync(dir, { recursive: true, force: true });
});

const post = (key: string, video: object) => server.inject({
  method: "POST", url: "/v1/recordings", headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
  payload: JSON.stringify({ url: "https://meet.example.com/r", video }),
});
const count = async (key: string) => (await server.inject({ url: "/v1/recordings", headers: { authorization: `Bearer ${key}` } })).json().recordings.length;

describe("video above the backend's ceilings", () => {
  test("3840×2160@60, 50 Mbit/s → 422 naming every field and its limit; nothing created", async () => {
    const res = await post(OPEN, { width: 3840, height: 2160, fps: 60, bitrateKbps: 50000 });
    expect(res.statusCode).toBe(422);
    expect(res.headers["content-type"]).toMatch(/^application\/problem\+json/);
    const p = res.json();
    expect(p.code).toBe("validation_failed");
    expect(p.errors.map((e: { field: string }) => e.field)).toEqual(["video.width", "video.height", "video.fps", "video.bitrateKbps"]);
    expect(p.errors[0].message).toContain("limit of 1920 px");
    expect(p.errors[3].message).toContain("limit of 8000 kbit/s");
    expect(p.detail).toContain("video.fps 60 fps is above backend open's limit of 30 fps");
    expect(await count(OPEN)).toBe(0);
  });

  test("one field over → one entry; a backend's own lower ceiling applies", async () => {
    const res = await post(SMALL, { width: 1920, height: 720 });
    expect(res.statusCode).toBe(422);
    expect(res.json().errors).toEqual([{ field: "video.width", message: "video.width 1920 px is above backend small's limit of 1280 px" }]);
    expect((await post(SMALL, { fps: 30 })).json().errors[0]).toMatchObject({ field: "video.fps", message: expect.stringContaining("limit of 15 fps") });
    expect(await count(SMALL)).toBe(0);
  });

  test("at the ceiling, or under a backend's higher one, the recording is created with those settings", async () => {
    const at = await post(OPEN, { width: 1920, height: 1080, fps: 30, bitrateKbps: 8000 });
    expect(at.statusCode).toBe(201);
    expect(at.json().video).toEqual({ width: 1920, height: 1080, fps: 30, bitrateKbps: 8000 });
    const big = await post(BIG, { width: 3840, height: 2160, fps: 60 });
    expect(big.statusCode).toBe(201);
    expect(big.json().video).toEqual({ width: 3840, height: 2160, fps: 60, bitrateKbps: 2500 });
    expect(await count(OPEN)).toBe(1);
  });
});
