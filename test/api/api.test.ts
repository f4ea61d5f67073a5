/**
 * The API's edges: authentication, validation, problem+json, origins, 404s, Range downloads
 * and delete, against a real App (SQLite store, dispatch) through Fastify's inject.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { connect, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import type { FastifyInstance } from "fastify";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { buildServer } from "../../src/api/index.js";
import { EmbeddedHost } from "../../src/hosts/index.js";
import { parseConfig } from "../../src/config/index.js";
import type { TimelineEvent } from "../../src/store/index.js";
import { createLogger } from "../../src/util/log.js";
import { completedRecording as completedRecordingOf } from "../helpers/recordings.js";
import { expectProblem } from "../helpers/problem.js";

const OPEN = "open-backend-key-0123456789";
const STRICT = "strict-backend-key-0123456789";
const SPOOLER = "spooler-backend-key-0123456789";
let dir: string;
let app: EmbeddedHost;
let server: FastifyInstance;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "meetrec-api-"));
  writeFileSync(join(dir, "not-a-directory"), "");
  const config = parseConfig({
    dataDir: dir, maxDurationSeconds: 3600,
    delivery: { pollIntervalMs: 50 },
    backends: {
      open: { apiKey: OPEN },
      strict: { apiKey: STRICT, allowedOrigins: ["https://meet.example.com"] },
      spooler: { apiKey: SPOOLER, delivery: { spool: { path: join(dir, "spool"), subdirFromMetadata: "tenant" } } },
      blocked: { apiKey: `blocked-${SPOOLER}`, delivery: { spool: { path: join(dir, "not-a-directory") } } },
    },
  });
  app = await EmbeddedHost.start(config, createLogger("silent"));
  server = await buildServer(app, createLogger("silent"));
});

afterAll(async () => {
  await server?.close();
  await app?.close();
  rmSync(dir, { recursive: true, force: true });
});

const auth = (key = OPEN) => ({ authorization: `Bearer ${key}` });


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
    // Event types are described from the catalogue, but stay strings: old rows may hold others.
    const eventType = doc.paths["/v1/recordings/{id}"].get.responses["200"].content["application/json"].schema.properties.events.items.properties.type;
    expect(eventType.type).toBe("string");
    expect(eventType.enum).toBeUndefined();
    expect(eventType.description).toContain("`period_started`");
    expect(eventType.description).toContain("`delivery_given_up`");
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
  test("empty body → 400, with or without a JSON content-type", async () => {
    expect((expectProblem(await post(""), 400, "bad_request")).detail).toContain("no body");
    expectProblem(await server.inject({ method: "POST", url: "/v1/recordings", headers: auth() }), 400, "bad_request");
  });
  test("not JSON → 415", async () => {
    expectProblem(await post("url=x", OPEN, "application/x-www-form-urlencoded"), 415, "unsupported_media_type");
  });
  test("text/plain → 415 (not a string to validate), on every /v1 route with a body", async () => {
    expectProblem(await post(JSON.stringify({ url: "https://meet.example.com/a" }), OPEN, "text/plain"), 415, "unsupported_media_type");
    const id = crypto.randomUUID();
    expectProblem(await server.inject({ method: "POST", url: `/v1/recordings/${id}/stop`, headers: { ...auth(), "content-type": "text/plain; charset=utf-8" }, payload: "stop" }), 415, "unsupported_media_type");
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
    expectProblem(bad, 416, "range_not_satisfiable");
    expect(bad.headers["content-range"]).toBe(`bytes */${bytes.length}`); // RFC 9110 §14.4
    expect(bad.headers["content-disposition"]).toBeUndefined();

    const view = (await server.inject({ url: `/v1/recordings/${id}`, headers: auth() })).json();
    expect(view.file).toMatchObject({ name: "recording.mp4", bytes: bytes.length, url: expect.stringMatching(new RegExp(`/v1/recordings/${id}/file$`)) });
    expect(view.worker).toBeNull(); // embedded mode: no cluster worker
    expect(view.events.map((e: any) => e.status)).toEqual(["queued", "starting", "recording", "stopping", "finalizing", "completed"]);
  });

  test("a stored event of a type the catalogue no longer lists (an older version's row) is still served", async () => {
    const { id } = await completedRecording();
    // Not writable through the typed store any more: the cast stands for a row an older meetrec wrote.
    await app.store.addEvent(id, { type: "recovering", message: "older row", data: { worker: "w1" } } as unknown as TimelineEvent);
    const res = await server.inject({ url: `/v1/recordings/${id}`, headers: auth() });
    expect(res.statusCode).toBe(200);
    expect(res.json().events.at(-1)).toMatchObject({ type: "recovering", status: null, message: "older row", data: { worker: "w1" } });
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

  test("stop and DELETE with content-type: application/json and no body (curl, fetch, axios) are done", async () => {
    const { id, file } = await completedRecording();
    const json = { ...auth(), "content-type": "application/json" };
    const stop = await server.inject({ method: "POST", url: `/v1/recordings/${id}/stop`, headers: json });
    expect(stop.statusCode).toBe(202);
    expect(stop.json()).toMatchObject({ id, status: "completed" });
    const redeliver = await server.inject({ method: "POST", url: `/v1/recordings/${id}/redeliver`, headers: { ...json, "content-length": "0" } });
    expectProblem(redeliver, 409, "not_ready"); // the route ran: this backend has no file target
    const del = await server.inject({ method: "DELETE", url: `/v1/recordings/${id}`, headers: json });
    expect(del.statusCode).toBe(204);
    expect(existsSync(file)).toBe(false);
    expectProblem(await server.inject({ url: `/v1/recordings/${id}`, headers: auth() }), 404, "not_found");
  });

  test("per-participant tracks: listed on the view with links, served as audio/ogg with Range; 404 for another number or none, 409 before the file", async () => {
    const { id, file } = await completedRecording();
    const rec = (await app.store.get(id))!;
    const dirOf = join(file, "..");
    const tracks = [1, 2].map((n) => {
      const name = `recording.mp4.track-${n}.ogg`;
      execFileSync("ffmpeg", ["-v", "error", "-f", "lavfi", "-i", `sine=f=${n * 440}:d=1`, "-c:a", "libopus", join(dirOf, name)]);
      return { name, source: `1/t${n}`, offsetMs: 100 * n, startedAt: new Date().toISOString(), durationSeconds: 1, bytes: statSync(join(dirOf, name)).size };
    });
    await app.store.mergeFile(id, { tracks });
    const view = (await server.inject({ url: `/v1/recordings/${id}`, headers: auth() })).json();
    expect(view.file.tracks.map((t: any) => [t.name, t.source, t.offsetMs])).toEqual([["recording.mp4.track-1.ogg", "1/t1", 100], ["recording.mp4.track-2.ogg", "1/t2", 200]]);
    expect(view.file.tracks[1].url).toMatch(new RegExp(`^http://[^/]+/v1/recordings/${id}/tracks/2$`));
    expect(view.tracks).toBe(false); // the request's option (this one was put into the store without it)
    const res = await server.inject({ url: `/v1/recordings/${id}/tracks/2`, headers: auth() });
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toBe("audio/ogg");
    expect(res.headers["content-disposition"]).toContain(`${id}-recording.mp4.track-2.ogg`);
    expect(Buffer.compare(res.rawPayload, readFileSync(join(dirOf, "recording.mp4.track-2.ogg")))).toBe(0);
    expect((await server.inject({ url: `/v1/recordings/${id}/tracks/2`, headers: { ...auth(), range: "bytes=0-9" } })).statusCode).toBe(206);
    expect(expectProblem(await server.inject({ url: `/v1/recordings/${id}/tracks/3`, headers: auth() }), 404, "not_found").detail).toContain("tracks 1, 2");
    expectProblem(await server.inject({ url: `/v1/recordings/${id}/tracks/0`, headers: auth() }), 422, "validation_failed");
    const plain = await completedRecording();
    expect(expectProblem(await server.inject({ url: `/v1/recordings/${plain.id}/tracks/1`, headers: auth() }), 404, "not_found").detail).toContain("tracks: true");
    const early = await app.store.create({ id: crypto.randomUUID(), backend: "open", metadata: {}, options: { ...rec.options, tracks: true } });
    expectProblem(await server.inject({ url: `/v1/recordings/${early.id}/tracks/1`, headers: auth() }), 409, "not_ready");
  });

  test("a gone file → 404 that names no server path", async () => {
    const { id, file } = await completedRecording();
    rmSync(file);
    const p = expectProblem(await server.inject({ url: `/v1/recordings/${id}/file`, headers: auth() }), 404, "not_found");
    expect(p.detail).toContain(id);
    expect(p.detail).not.toContain(dir);
    expect(p.detail).not.toMatch(/\/(tmp|var|home|srv)\b/);
  });
});

describe("what clients see names no server path", () => {
  /** Redelivers `id` and polls its view until the spool delivery has an attempt. */
  async function spoolAttempt(id: string, key: string): Promise<{ outcome: string; message: string }> {
    expect((await server.inject({ method: "POST", url: `/v1/recordings/${id}/redeliver`, headers: auth(key) })).statusCode).toBe(202);
    for (let i = 0; i < 200; i++) {
      const view = (await server.inject({ url: `/v1/recordings/${id}`, headers: auth(key) })).json();
      const attempt = view.deliveries.find((d: any) => d.target === "spool")?.attempts[0];
      if (attempt) return attempt;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error("no spool attempt within 10 s");
  }

  test("a spool delivery says the spool directory, the sub-directory and the file name", async () => {
    const { id } = await completedRecordingOf(app, "spooler", { metadata: { tenant: "school-7" } });
    const attempt = await spoolAttempt(id, SPOOLER);
    expect(attempt).toEqual(expect.objectContaining({ outcome: "ok", message: `written to the spool directory: school-7/${id}.mp4` }));
    expect(existsSync(join(dir, "spool", "school-7", `${id}.mp4`))).toBe(true);
  });

  test("a failed spool delivery gives the error code, not the path", async () => {
    const { id } = await completedRecordingOf(app, "blocked");
    const attempt = await spoolAttempt(id, `blocked-${SPOOLER}`);
    expect(attempt.outcome).toBe("error");
    expect(attempt.message).toMatch(/^Cannot write to the spool directory: (ENOTDIR|EEXIST): .* \(mkdir\)/);
    expect(attempt.message).not.toContain(dir);
  });
});

describe("every error is problem+json", () => {
  test("a missing segment → 404 no such segment", async () => {
    const { id } = await completedRecording();
    const p = expectProblem(await server.inject({ url: `/v1/recordings/${id}/media/p1/000001.m4s`, headers: auth() }), 404, "not_found");
    expect(p.detail).toMatch(/^No such segment/);
    expect(p.detail).not.toContain(dir);
  });

  test("a wrong method on an existing path → 405 with Allow; an unknown path stays 404", async () => {
    const id = crypto.randomUUID();
    const put = await server.inject({ method: "PUT", url: `/v1/recordings/${id}`, headers: auth() });
    expectProblem(put, 405, "method_not_allowed");
    expect(put.headers.allow).toBe("GET, HEAD, PATCH, DELETE");
    const get = await server.inject({ method: "GET", url: `/v1/recordings/${id}/stop`, headers: auth() });
    expectProblem(get, 405, "method_not_allowed");
    expect(get.headers.allow).toBe("POST");
    const list = await server.inject({ method: "DELETE", url: "/v1/recordings?x=1", headers: auth() });
    expectProblem(list, 405, "method_not_allowed");
    expect(list.headers.allow).toBe("GET, HEAD, POST");
    const nowhere = await server.inject({ method: "GET", url: "/v1/nowhere", headers: auth() });
    expectProblem(nowhere, 404, "not_found");
    expect(nowhere.headers.allow).toBeUndefined();
    expectProblem(await server.inject({ method: "PUT", url: "/v1/nowhere" }), 404, "not_found");
  });

  test("a too long path segment → 414 that does not echo the URL", async () => {
    const long = `/v1/recordings/${"x".repeat(300)}?key=SECRETVALUE`;
    const res = await server.inject({ url: long, headers: auth() });
    const p = expectProblem(res, 414, "uri_too_long");
    expect(res.body).not.toContain("xxxxxxxxxx");
    expect(res.body).not.toContain("SECRETVALUE");
    expect(p.instance).toBeUndefined();
  });

  test("a malformed percent-encoding → 400 problem", async () => {
    const res = await server.inject({ url: `/v1/recordings/%zz`, headers: auth() });
    expectProblem(res, 400, "bad_request");
    expect(res.body).not.toContain("%zz");
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

/** Sends `bytes` on a fresh TCP connection and returns everything the server wrote until it closed. */
function rawRequest(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port });
    const chunks: Buffer[] = [];
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("error", reject);
    socket.on("close", () => resolve(Buffer.concat(chunks).toString("utf8")));
    socket.end(bytes);
  });
}

/** Status, headers (lower-case names) and JSON body of a raw HTTP/1.1 response. */
function parseRaw(text: string): { status: number; headers: Record<string, string>; body: any } {
  const [head, body] = [text.slice(0, text.indexOf("\r\n\r\n")), text.slice(text.indexOf("\r\n\r\n") + 4)];
  const [statusLine, ...lines] = head.split("\r\n");
  const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]));
  return { status: Number(statusLine.split(" ")[1]), headers, body: JSON.parse(body) };
}

describe("on a real socket, with the log captured", () => {
  const SECRET = "SECRETVALUE";
  let auxDir: string;
  let aux: EmbeddedHost;
  let real: FastifyInstance;
  let port: number;
  let logText = "";

  beforeAll(async () => {
    auxDir = mkdtempSync(join(tmpdir(), "meetrec-api-log-"));
    // cpuBudget below one recording's cost: what is created stays queued (no browser is started).
    const config = parseConfig({ dataDir: auxDir, capacity: { cpuBudget: 0.1 }, backends: { open: { apiKey: OPEN } } });
    const sink = new Writable({ write(chunk, _enc, done) { logText += String(chunk); done(); } });
    const log = pino({ level: "trace" }, sink);
    aux = await EmbeddedHost.start(config, log);
    real = await buildServer(aux, log);
    await real.listen({ host: "127.0.0.1", port: 0 });
    port = (real.server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await real?.close();
    await aux?.close();
    rmSync(auxDir, { recursive: true, force: true });
  });

  test("a key in the query is refused and never logged; the path is", async () => {
    const refused = await real.inject({ url: `/v1/recordings?key=${SECRET}` });
    expectProblem(refused, 401, "unauthorized");
    expectProblem(await real.inject({ url: `/v1/nowhere?apiKey=${SECRET}&x=1`, headers: auth() }), 404, "not_found");
    expectProblem(await real.inject({ url: `/v1/recordings/${"x".repeat(200)}?token=${SECRET}` }), 414, "uri_too_long");
    const res = await fetch(`http://127.0.0.1:${port}/v1/recordings?key=${SECRET}`);
    expect(res.status).toBe(401);
    await res.text();
    await rawRequest(port, `GET /v1/recordings?key=${SECRET} HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n`);
    expect(logText).toContain('"url":"/v1/recordings?…"');
    expect(logText).toContain('"url":"/v1/nowhere?…"');
    expect(logText).toContain("incoming request");
    expect(logText).not.toContain(SECRET);
  });

  test("Node's own 400 (malformed request line) is problem+json on the raw socket", async () => {
    const res = parseRaw(await rawRequest(port, `GET /v1/recordings?key=${SECRET} HTTP/1.1 extra\r\nHost: x\r\n\r\n`));
    expect(res.status).toBe(400);
    expect(res.headers["content-type"]).toMatch(/^application\/problem\+json/);
    expect(Number(res.headers["content-length"])).toBe(Buffer.byteLength(JSON.stringify(res.body)));
    expect(res.body).toMatchObject({ status: 400, code: "bad_request", type: "urn:meetrec:problem:bad_request" });
    expect(JSON.stringify(res.body)).not.toContain(SECRET);
  });

  test("Node's 431 (headers too large) is problem+json on the raw socket", async () => {
    const res = parseRaw(await rawRequest(port, `GET /v1/recordings HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20000)}\r\n\r\n`));
    expect(res.status).toBe(431);
    expect(res.headers["content-type"]).toMatch(/^application\/problem\+json/);
    expect(res.body).toMatchObject({ status: 431, code: "headers_too_large", type: "urn:meetrec:problem:headers_too_large" });
  });

  test("a URL too long for Node (16 KiB with the headers) is the same 431, never echoed", async () => {
    const text = await rawRequest(port, `GET /v1/recordings?key=${SECRET}${"a".repeat(20000)} HTTP/1.1\r\nHost: x\r\n\r\n`);
    const res = parseRaw(text);
    expect(res.status).toBe(431);
    expect(res.body.code).toBe("headers_too_large");
    expect(text).not.toContain(SECRET);
  });

  test("a wait step with timeoutMs is accepted (201)", async () => {
    const res = await real.inject({
      method: "POST", url: "/v1/recordings", headers: { ...auth(), "content-type": "application/json" },
      payload: JSON.stringify({ url: "https://meet.example.com/r", join: [{ wait: 100, timeoutMs: 5000 }] }),
    });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({ status: "queued" });
    const id = res.json().id;
    expect((await aux.store.get(id))?.options.join).toEqual([{ wait: 100, timeoutMs: 5000 }]);
    const del = await real.inject({ method: "DELETE", url: `/v1/recordings/${id}`, headers: { ...auth(), "content-type": "application/json" } });
    expect(del.statusCode).toBe(204);
  });
});
