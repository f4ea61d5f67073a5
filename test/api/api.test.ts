/**
 * The API's edges: authentication, validation, problem+json, origins, 404s, Range downloads
 * and delete, against a real App (SQLite store, dispatch) through Fastify's inject.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { buildServer } from "../../src/api/index.js";
import { App } from "../../src/app/index.js";
import { parseConfig } from "../../src/config/index.js";
import { createLogger } from "../../src/util/log.js";
import { completedRecording as completedRecordingOf } from "../helpers/recordings.js";

const OPEN = "open-backend-key-0123456789";
const STRICT = "strict-backend-key-0123456789";
let dir: string;
let app: App;
let server: FastifyInstance;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "meetrec-api-"));
  const config = parseConfig({
    dataDir: dir, maxDurationSeconds: 3600,
    backends: {
      open: { apiKey: OPEN },
      strict: { apiKey: STRICT, allowedOrigins: ["https://meet.example.com"] },
    },
  });
  app = await App.start(config, createLogger("silent"));
  server = await buildServer(app, createLogger("silent"));
});

afterAll(async () => {
  await server?.close();
  await app?.close();
  rmSync(dir, { recursive: true, force: true });
});

const auth = (key = OPEN) => ({ authorization: `Bearer ${key}` });

function expectProblem(res: { statusCode: number; headers: Record<string, unknown>; json(): any }, status: number, code: string) {
  expect(res.statusCode).toBe(status);
  expect(res.headers["content-type"]).toMatch(/^application\/problem\+json/);
  const p = res.json();
  expect(p).toMatchObject({ status, code, type: `urn:meetrec:problem:${code}` });
  expect(typeof p.title).toBe("string");
  expect(p.detail.length).toBeGreaterThan(10);
  return p;
}

const completedRecording = (backend = "open") => completedRecordingOf(app, backend);

describe("health and documentation (no key needed)", () => {
  test("healthz, readyz, openapi.json, docs", async () => {
    expect((await server.inject({ url: "/healthz" })).json()).toMatchObject({ status: "ok" });
    const ready = await server.inject({ url: "/readyz" });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toMatchObject({ ready: true, active: 0, queued: 0, capacity: { cpuUsed: 0, canAccept: { video: true, audio: true } } });
    expect(ready.json().capacity.cpuBudget).toBeGreaterThanOrEqual(1);
    expect(ready.json().capacity.freeDiskBytes).toBeGreaterThan(0);
    const doc = (await server.inject({ url: "/openapi.json" })).json();
    expect(doc.openapi).toBe("3.1.0");
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(["/v1/recordings", "/v1/recordings/{id}", "/v1/recordings/{id}/stop", "/v1/recordings/{id}/file"]));
    expect(doc.paths["/v1/recordings"].post.requestBody.content["application/json"].schema.properties).toHaveProperty("url");
    const docs = await server.inject({ url: "/docs/" });
    expect(docs.statusCode).toBe(200);
    expect(docs.body).toContain("swagger");
  });
});

describe("authentication", () => {
  test.each([
    ["no header", {}],
    ["wrong key", { authorization: "Bearer not-the-key-at-all-000000" }],
    ["other scheme", { authorization: `Basic ${Buffer.from(`x:${OPEN}`).toString("base64")}` }],
  ])("%s → 401 problem", async (_name, headers) => {
    const res = await server.inject({ method: "GET", url: "/v1/recordings", headers });
    expectProblem(res, 401, "unauthorized");
    expect(res.headers["www-authenticate"]).toContain("Bearer");
    expect(res.body).not.toContain(OPEN);
  });
});

describe("bad requests get a problem and create nothing", () => {
  const post = (payload: string | object, key = OPEN, type = "application/json") =>
    server.inject({ method: "POST", url: "/v1/recordings", headers: { ...auth(key), "content-type": type }, payload: typeof payload === "string" ? payload : JSON.stringify(payload) });

  test("malformed JSON → 400", async () => {
    expectProblem(await post("{\"url\": "), 400, "bad_request");
  });
  test("empty body → 400", async () => {
    expectProblem(await post(""), 400, "bad_request");
  });
  test("not JSON → 415", async () => {
    expectProblem(await post("url=x", OPEN, "application/x-www-form-urlencoded"), 415, "bad_request");
  });
  test("unknown field → 422 naming it", async () => {
    const p = expectProblem(await post({ url: "https://meet.example.com/a", colour: "red" }), 422, "validation_failed");
    expect(p.detail).toContain("colour");
  });
  test("bad values → 422 with one entry per field", async () => {
    const p = expectProblem(await post({ url: "not a url", mode: "hologram", video: { width: 7 }, join: [{ click: "" }] }), 422, "validation_failed");
    const fields = p.errors.map((e: any) => e.field);
    expect(fields).toEqual(expect.arrayContaining(["body.url", "body.mode", "body.video.width"]));
  });
  test("non-http URL → 422", async () => {
    expectProblem(await post({ url: "file:///etc/passwd" }), 422, "validation_failed");
  });
  test("unknown join step → 422", async () => {
    expectProblem(await post({ url: "https://meet.example.com/a", join: [{ hover: "#x" }] }), 422, "validation_failed");
  });
  test("maxDurationSeconds above the server limit → 422", async () => {
    const p = expectProblem(await post({ url: "https://meet.example.com/a", maxDurationSeconds: 99999 }), 422, "validation_failed");
    expect(p.detail).toContain("3600");
  });
  test("origin not allowed for the backend → 422", async () => {
    const p = expectProblem(await post({ url: "https://evil.example.org/x" }, STRICT), 422, "origin_not_allowed");
    expect(p.detail).toContain("https://evil.example.org");
  });
  test("a goto step to a disallowed origin → 422", async () => {
    expectProblem(await post({ url: "https://meet.example.com/r", join: [{ goto: "http://127.0.0.1:9/admin" }] }, STRICT), 422, "origin_not_allowed");
  });
  test("a delivery target the backend does not have → 422 naming it; a bad recipient → 422", async () => {
    const p = expectProblem(await post({ url: "https://meet.example.com/a", delivery: { targets: ["s3"] } }), 422, "validation_failed");
    expect(p.detail).toContain("no s3 delivery target");
    expectProblem(await post({ url: "https://meet.example.com/a", delivery: { email: { to: "not-an-address" } } }), 422, "validation_failed");
    expectProblem(await post({ url: "https://meet.example.com/a", delivery: { spool: { subdir: "../x" } } }), 422, "validation_failed");
  });
  test("nothing was created by any of them", async () => {
    for (const key of [OPEN, STRICT]) {
      expect((await server.inject({ url: "/v1/recordings", headers: auth(key) })).json().recordings).toEqual([]);
    }
    expect(existsSync(join(dir, "recordings")) ? readdirSync(join(dir, "recordings")) : []).toEqual([]);
  });
  test("bad query → 422", async () => {
    expectProblem(await server.inject({ url: "/v1/recordings?status=lost", headers: auth() }), 422, "validation_failed");
  });
});

describe("recordings by id", () => {
  test("unknown id → 404 on every route", async () => {
    const id = crypto.randomUUID();
    for (const [method, url] of [["GET", `/v1/recordings/${id}`], ["POST", `/v1/recordings/${id}/stop`], ["GET", `/v1/recordings/${id}/file`], ["DELETE", `/v1/recordings/${id}`]] as const) {
      expectProblem(await server.inject({ method, url, headers: auth() }), 404, "not_found");
    }
  });
  test("another backend's recording is not visible → 404", async () => {
    const { id } = await completedRecording("strict");
    expectProblem(await server.inject({ url: `/v1/recordings/${id}`, headers: auth(OPEN) }), 404, "not_found");
    expect((await server.inject({ url: `/v1/recordings/${id}`, headers: auth(STRICT) })).statusCode).toBe(200);
  });
  test("malformed id → 422", async () => {
    expectProblem(await server.inject({ url: "/v1/recordings/../../etc", headers: auth() }), 404, "not_found");
    expectProblem(await server.inject({ url: "/v1/recordings/abc", headers: auth() }), 422, "validation_failed");
  });
  test("no file yet → 409 not_ready", async () => {
    const rec = await app.store.create({ id: crypto.randomUUID(), backend: "open", metadata: {}, options: { url: "https://x.example/", join: [], mode: "audio", browser: "chromium", video: { width: 640, height: 360, fps: 10, bitrateKbps: 300 }, maxDurationSeconds: 5 } });
    await app.store.transition(rec.id, "aborted", { endReason: "stopped" });
    expectProblem(await server.inject({ url: `/v1/recordings/${rec.id}/file`, headers: auth() }), 409, "not_ready");
  });
});

describe("file download with HTTP Range (RFC 9110 §14)", () => {
  test("full, first bytes, suffix, open-ended and unsatisfiable ranges", async () => {
    const { id, bytes } = await completedRecording();
    const url = `/v1/recordings/${id}/file`;
    const full = await server.inject({ url, headers: auth() });
    expect(full.statusCode).toBe(200);
    expect(full.headers["accept-ranges"]).toBe("bytes");
    expect(full.headers["content-type"]).toBe("video/mp4");
    expect(full.headers["content-disposition"]).toContain(`${id}-recording.mp4`);
    expect(Buffer.compare(full.rawPayload, bytes)).toBe(0);

    const first = await server.inject({ url, headers: { ...auth(), range: "bytes=0-99" } });
    expect(first.statusCode).toBe(206);
    expect(first.headers["content-range"]).toBe(`bytes 0-99/${bytes.length}`);
    expect(Buffer.compare(first.rawPayload, bytes.subarray(0, 100))).toBe(0);

    const suffix = await server.inject({ url, headers: { ...auth(), range: "bytes=-50" } });
    expect(suffix.statusCode).toBe(206);
    expect(Buffer.compare(suffix.rawPayload, bytes.subarray(bytes.length - 50))).toBe(0);

    const open = await server.inject({ url, headers: { ...auth(), range: `bytes=${bytes.length - 10}-` } });
    expect(open.statusCode).toBe(206);
    expect(open.rawPayload.length).toBe(10);

    const bad = await server.inject({ url, headers: { ...auth(), range: `bytes=${bytes.length + 10}-` } });
    expect(bad.statusCode).toBe(416);

    const view = (await server.inject({ url: `/v1/recordings/${id}`, headers: auth() })).json();
    expect(view.file).toMatchObject({ name: "recording.mp4", bytes: bytes.length, url: expect.stringMatching(new RegExp(`/v1/recordings/${id}/file$`)) });
    expect(view.worker).toBeNull(); // embedded mode: no cluster worker
    expect(view.events.map((e: any) => e.status)).toEqual(["queued", "starting", "recording", "stopping", "finalizing", "completed"]);
  });

  test("stop of an ended recording → 202 unchanged; DELETE removes files and row", async () => {
    const { id, file } = await completedRecording();
    const stop = await server.inject({ method: "POST", url: `/v1/recordings/${id}/stop`, headers: auth() });
    expect(stop.statusCode).toBe(202);
    expect(stop.json().status).toBe("completed");
    const del = await server.inject({ method: "DELETE", url: `/v1/recordings/${id}`, headers: auth() });
    expect(del.statusCode).toBe(204);
    expect(existsSync(file)).toBe(false);
    expectProblem(await server.inject({ url: `/v1/recordings/${id}`, headers: auth() }), 404, "not_found");
  });
});

describe("metrics (no key needed)", () => {
  test("metrics in Prometheus text format", async () => {
    await completedRecording();
    const res = await server.inject({ url: "/metrics" });
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = res.body;
    expect(text).toMatch(/^meetrec_recordings\{status="completed"\} [1-9]/m);
    expect(text).toMatch(/^meetrec_recordings_active\{worker="[^"]+"\} 0$/m);
    expect(text).toMatch(/^meetrec_can_accept\{worker="[^"]+",kind="video"\} 1$/m);
    expect(text).toMatch(/^meetrec_capacity_cpu_left_cores\{worker="[^"]+"\} \d/m);
    for (const name of ["meetrec_failovers_total", "meetrec_lost_media_seconds_total", "meetrec_delivery_attempts_total", "meetrec_segment_store_seconds", "meetrec_segments_pending", "meetrec_process_cpu_seconds_total"]) {
      expect(text).toContain(`# TYPE ${name}`);
    }
  });
});
