/**
 * Delivery through the API against real Apps (SQLite store, delivery loop, a local spool
 * directory in a temp dir): what a recording's targets need from the request is checked at
 * `POST /v1/recordings` (a PILOS spool: `metadata.meetingId`); a stuck delivery is fixed with `PATCH` + `redeliver`; a delivery still
 * failing after `delivery.giveUpAfterSeconds` is given up (the recording ends `failed`, its file
 * kept); one redelivery at a time; the attempts listed are capped. No meeting is recorded:
 * finished recordings come from test/helpers/recordings.ts, and POSTed ones stay `queued`
 * (`capacity.minFreeMemoryBytes` is out of reach) until they are stopped.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { buildServer } from "../../src/api/index.js";
import { EmbeddedHost } from "../../src/hosts/index.js";
import { parseConfig } from "../../src/config/index.js";
import { createLogger } from "../../src/util/log.js";
import { completedRecording, finishedRecording } from "../helpers/recordings.js";
import { startWebhookReceiver, type WebhookReceiver } from "../helpers/webhooks.js";
import { expectProblem } from "../helpers/problem.js";
import { until } from "../helpers/until.js";

const KEY = "spool-backend-key-0123456789";
const HOOKS_KEY = "hooks-backend-key-0123456789";
const PILOS_KEY = "pilos-backend-key-0123456789";
const SECRET = `whsec_${randomBytes(32).toString("base64")}`;

let dir: string;
/** Slow retries (10 min), default give-up: only `redeliver` makes a second attempt soon. */
let app: EmbeddedHost;
let server: FastifyInstance;
let spool: string;
/** Fast retries and a give-up after 0.6 s. */
let quick: EmbeddedHost;
let quickServer: FastifyInstance;
let quickSpool: string;
let receiver: WebhookReceiver;

/** A config with a spool (sub-directory from `metadata.tenant`) and e-mail backend, and a webhook-only one. */
function config(dataDir: string, spoolPath: string, delivery: object) {
  return parseConfig({
    dataDir, capacity: { minFreeMemoryBytes: Number.MAX_SAFE_INTEGER }, delivery,
    backends: {
      spool: {
        apiKey: KEY,
        delivery: {
          spool: { path: spoolPath, subdirFromMetadata: "tenant" },
          email: { smtp: { host: "127.0.0.1", port: 9 }, from: "meetrec <recordings@example.com>" },
        },
      },
      hooks: { apiKey: HOOKS_KEY, delivery: { webhooks: [{ name: "platform", url: receiver.url, secret: SECRET, events: ["recording.completed"] }] } },
      pilos: { apiKey: PILOS_KEY, delivery: { spool: { path: `${spoolPath}-pilos`, subdirFromMetadata: "instance", package: "pilos" } } },
    },
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "meetrec-api-delivery-"));
  receiver = await startWebhookReceiver(SECRET, () => 503);
  spool = join(dir, "spool");
  quickSpool = join(dir, "quick-spool");
  for (const s of [spool, quickSpool]) {
    mkdirSync(s);
    writeFileSync(join(s, "blocked"), "a file where the tenant's sub-directory should be: delivery there fails");
  }
  app = await EmbeddedHost.start(config(join(dir, "data"), spool, { retry: { initialDelayMs: 600_000, maxDelayMs: 600_000 }, pollIntervalMs: 20 }), createLogger("silent"));
  server = await buildServer(app, createLogger("silent"));
  quick = await EmbeddedHost.start(config(join(dir, "quick-data"), quickSpool, { retry: { initialDelayMs: 50, maxDelayMs: 100, factor: 2 }, pollIntervalMs: 20, giveUpAfterSeconds: 0.6 }), createLogger("silent"));
  quickServer = await buildServer(quick, createLogger("silent"));
});

afterAll(async () => {
  await server?.close();
  await app?.close();
  await quickServer?.close();
  await quick?.close();
  await receiver?.close();
  rmSync(dir, { recursive: true, force: true });
});

const auth = (key = KEY) => ({ authorization: `Bearer ${key}` });

const get = async (s: FastifyInstance, id: string, key = KEY) => (await s.inject({ url: `/v1/recordings/${id}`, headers: auth(key) })).json();
const patch = (s: FastifyInstance, id: string, metadata: object, key = KEY) =>
  s.inject({ method: "PATCH", url: `/v1/recordings/${id}`, headers: auth(key), payload: { metadata } });
const redeliver = (s: FastifyInstance, id: string, key = KEY) => s.inject({ method: "POST", url: `/v1/recordings/${id}/redeliver`, headers: auth(key) });

/** Everything under a spool directory, as relative paths. */
const listing = (root: string) => readdirSync(root, { recursive: true }).map(String).sort();

describe("POST /v1/recordings checks what the recording's delivery targets need", () => {
  const post = (body: object) => server.inject({ method: "POST", url: "/v1/recordings", headers: auth(), payload: { url: "https://meet.example.com/r", ...body } });
  const count = async () => (await server.inject({ url: "/v1/recordings?limit=1000", headers: auth() })).json().recordings.length;

  test.each([
    ["an unsafe spool sub-directory", { tenant: "../../etc" }, "metadata.tenant"],
    ["a spool sub-directory with a slash", { tenant: "a/b" }, "metadata.tenant"],
    ["no spool sub-directory", {}, "metadata.tenant"],
    ["a spool sub-directory that is not a string", { tenant: 7 }, "metadata.tenant"],
    ["an owner address that is not one", { tenant: "school-7", ownerEmail: "not an address" }, "metadata.ownerEmail"],
    ["the reserved key talk", { tenant: "school-7", talk: "x" }, "metadata.talk"],
  ])("%s → 422 naming the field; nothing is created", async (_name, metadata, field) => {
    const before = await count();
    const p = expectProblem(await post({ metadata }), 422, "validation_failed");
    expect(p.errors).toEqual([{ field, message: expect.stringContaining(field) }]);
    expect(p.detail).toContain(field);
    expect(await count()).toBe(before);
    expect(listing(spool)).toEqual(["blocked"]);
    expect(existsSync(join(dir, "data", "recordings")) ? readdirSync(join(dir, "data", "recordings")) : []).toEqual([]);
  });

  test("only targets the recording uses are checked; absent owner address is fine", async () => {
    const accepted = [
      { metadata: { tenant: "school-7" } }, // no ownerEmail: no mail, that is all
      { metadata: { tenant: "school-7", ownerEmail: "owner@example.com" } },
      { metadata: { tenant: "../../etc" }, delivery: { targets: ["email"] } }, // no spool for this one
      { metadata: { ownerEmail: "nope" }, delivery: { targets: ["spool"], spool: { subdir: "one-off" } } }, // its own sub-directory, no mail
      { metadata: { tenant: "school-7", ownerEmail: "nope" }, delivery: { email: { to: "owner@example.com" } } }, // its own recipient
    ];
    for (const body of accepted) {
      const res = await post(body);
      expect(res.statusCode, JSON.stringify(body)).toBe(201);
      expect(res.json()).toMatchObject({ status: "queued", metadata: body.metadata });
      const stopped = await server.inject({ method: "POST", url: `/v1/recordings/${res.json().id}/stop`, headers: auth() });
      expect(stopped.json().status).toBe("aborted");
    }
    // A per-recording sub-directory follows the same rule as one from metadata.
    expectProblem(await post({ metadata: { tenant: "school-7" }, delivery: { spool: { subdir: "a..b" } } }), 422, "validation_failed");
  });
});

describe("a backend delivering to a PILOS spool (delivery.spool.package: pilos)", () => {
  const post = (metadata: object) => server.inject({ method: "POST", url: "/v1/recordings", headers: auth(PILOS_KEY), payload: { url: "https://meet.example.com/r", metadata } });
  const count = async () => (await server.inject({ url: "/v1/recordings?limit=1000", headers: auth(PILOS_KEY) })).json().recordings.length;

  test("a recording without metadata.meetingId is refused with 422, and so is a PATCH that removes it", async () => {
    const before = await count();
    for (const metadata of [{ instance: "pilos-1" }, { instance: "pilos-1", meetingId: "" }, { instance: "pilos-1", meetingId: 7 }]) {
      const p = expectProblem(await post(metadata), 422, "validation_failed");
      expect(p.errors).toEqual([{ field: "metadata.meetingId", message: expect.stringContaining("PILOS spool") }]);
    }
    expect(await count()).toBe(before);
    expect(existsSync(`${spool}-pilos`)).toBe(false);

    const res = await post({ instance: "pilos-1", meetingId: "bf8d59d9-9b80-4666-be2c-4b7e56f5b8c9", meetingName: "Demo" });
    expect(res.statusCode).toBe(201);
    const id = res.json().id;
    expect(expectProblem(await patch(server, id, { meetingId: null }, PILOS_KEY), 422, "validation_failed").errors[0].field).toBe("metadata.meetingId");
    expect((await get(server, id, PILOS_KEY)).metadata).toEqual({ instance: "pilos-1", meetingId: "bf8d59d9-9b80-4666-be2c-4b7e56f5b8c9", meetingName: "Demo" });
    await server.inject({ method: "POST", url: `/v1/recordings/${id}/stop`, headers: auth(PILOS_KEY) });
  });

  test("a finished recording becomes one <recordId>-video.tar in the instance's directory", async () => {
    const { id } = await finishedRecording(app, "pilos", { metadata: { instance: "pilos-2", meetingId: "abc-def-123" } });
    const done = await until("completed", async () => { const v = await get(server, id, PILOS_KEY); return v.status === "completed" && v; });
    const files = readdirSync(join(`${spool}-pilos`, "pilos-2"));
    expect(files).toEqual([expect.stringMatching(/^[0-9a-f]{40}-\d{13}-video\.tar$/)]);
    expect(done.deliveries[0].attempts.at(-1)).toMatchObject({ outcome: "ok", message: `written to the spool directory: pilos-2/${files[0]}` });
  });
});

describe("a stuck delivery: PATCH the metadata, then redeliver", () => {
  test("a spool sub-directory that cannot be written is fixed by PATCH + redeliver → delivered and completed", async () => {
    const { id, file, bytes } = await finishedRecording(app, "spool", { metadata: { tenant: "blocked", room: "r-1" } });
    const stuck = await until("the first spool attempt", async () => {
      const v = await get(server, id);
      return v.deliveries.find((d: any) => d.target === "spool")?.attemptCount === 1 && v;
    });
    expect(stuck.status).toBe("delivering");
    const failing = stuck.deliveries.find((d: any) => d.target === "spool");
    expect(failing).toMatchObject({ status: "pending", attemptCount: 1, redeliverPending: false });
    expect(failing.attempts[0].message).toMatch(/EEXIST|ENOTDIR|exists|not a directory/i);
    expect(Date.parse(failing.nextAttemptAt) - Date.now()).toBeGreaterThan(60_000); // the next retry is minutes away

    // Bad corrections are refused and change nothing.
    for (const [metadata, field] of [[{ tenant: "../../etc" }, "metadata.tenant"], [{ tenant: null }, "metadata.tenant"], [{ ownerEmail: "x" }, "metadata.ownerEmail"], [{ talk: "x" }, "metadata.talk"]] as const) {
      const p = expectProblem(await patch(server, id, metadata), 422, "validation_failed");
      expect(p.errors[0].field).toBe(field);
    }
    expectProblem(await patch(server, id, {}), 422, "validation_failed");
    expectProblem(await server.inject({ method: "PATCH", url: `/v1/recordings/${id}`, headers: auth(), payload: { metadata: { tenant: "x" }, status: "completed" } }), 422, "validation_failed");
    expectProblem(await server.inject({ method: "PATCH", url: `/v1/recordings/${id}`, headers: auth(HOOKS_KEY), payload: { metadata: { tenant: "fixed" } } }), 404, "not_found");
    const unchanged = await get(server, id);
    expect(unchanged.metadata).toEqual({ tenant: "blocked", room: "r-1" });
    expect(unchanged.events.map((e: any) => e.type)).not.toContain("metadata_changed");
    expect(unchanged.deliveries.find((d: any) => d.target === "spool").attemptCount).toBe(1);

    // Merge: tenant replaced, room removed (null), a new key added.
    const patched = await patch(server, id, { tenant: "fixed", room: null, note: "moved" });
    expect(patched.statusCode).toBe(200);
    expect(patched.json()).toMatchObject({ id, status: "delivering", metadata: { tenant: "fixed", note: "moved" } });
    expect(patched.json().metadata).not.toHaveProperty("room");
    expect(patched.json().events.at(-1)).toMatchObject({ type: "metadata_changed", data: { set: ["tenant", "note"], removed: ["room"] } });
    expect(listing(spool)).toEqual(["blocked"]); // nothing delivered by the PATCH itself

    const r = await redeliver(server, id);
    expect(r.statusCode).toBe(202);
    expect(r.json()).toEqual({ scheduled: 1 });
    const done = await until("completed", async () => { const v = await get(server, id); return v.status === "completed" && v; });
    expect(done.error).toBeNull();
    expect(done.endReason).toBe("stopped");
    const delivered = join(spool, "fixed", `${id}.mp4`);
    expect(Buffer.compare(readFileSync(delivered), bytes)).toBe(0);
    expect(JSON.parse(readFileSync(join(spool, "fixed", `${id}.json`), "utf8")).metadata).toEqual({ tenant: "fixed", note: "moved" }); // read at attempt time
    expect(statSync(join(spool, "blocked")).isFile()).toBe(true);
    expect(existsSync(file)).toBe(true);
    expect(done.deliveries.filter((d: any) => d.target === "spool")).toEqual([expect.objectContaining({ status: "succeeded", attemptCount: 2, redeliverPending: false })]);
    expect(done.events.filter((e: any) => e.type !== "status").map((e: any) => e.type)).toEqual(["metadata_changed", "redeliver_requested"]);
    expect(done.events.filter((e: any) => e.type === "status").map((e: any) => e.status).slice(-2)).toEqual(["delivering", "completed"]);

    // Its delivery has ended: no more changes.
    const p = expectProblem(await patch(server, id, { tenant: "again" }), 409, "conflict");
    expect(p.detail).toContain("completed");
    expect((await get(server, id)).metadata).toEqual({ tenant: "fixed", note: "moved" });
  });

  test("PATCH is refused once a recording is aborted, or failed without a file", async () => {
    const options = { url: "https://meet.example.com/r", join: [], mode: "audio" as const, browser: "chromium" as const, video: { width: 640, height: 360, fps: 10, bitrateKbps: 300 }, maxDurationSeconds: 5 };
    const aborted = await app.store.create({ id: randomUUID(), backend: "spool", metadata: { tenant: "a" }, options });
    await app.store.transition(aborted.id, "aborted", { endReason: "stopped" });
    const failed = await app.store.create({ id: randomUUID(), backend: "spool", metadata: { tenant: "a" }, options });
    await app.store.transition(failed.id, "failed", { endReason: "failed", error: { code: "join_failed", message: "no" } });
    for (const id of [aborted.id, failed.id]) {
      expectProblem(await patch(server, id, { tenant: "b" }), 409, "conflict");
      expect((await get(server, id)).metadata).toEqual({ tenant: "a" });
    }
    // A queued one may change (and is still checked).
    const queued = await app.store.create({ id: randomUUID(), backend: "spool", metadata: { tenant: "a" }, options });
    expect((await patch(server, queued.id, { tenant: "b" })).json().metadata).toEqual({ tenant: "b" });
    expectProblem(await patch(server, queued.id, { tenant: ".." }), 422, "validation_failed");
    await app.store.transition(queued.id, "aborted", { endReason: "stopped" });
  });
});

describe("one redelivery at a time", () => {
  test("a second redeliver while one is pending → 409 and nothing more is queued; once attempted, another is accepted", async () => {
    const { id } = await completedRecording(app, "spool", { metadata: { tenant: "t-409" } });
    app.delivery.pause(); // keep the first redelivery pending
    try {
      const first = await redeliver(server, id);
      expect(first.statusCode).toBe(202);
      expect(first.json()).toEqual({ scheduled: 1 });
      const before = await get(server, id);
      const p = expectProblem(await redeliver(server, id), 409, "conflict");
      expect(p.detail).toMatch(/redelivery .* already pending/);
      const after = await get(server, id);
      expect(after.deliveries).toEqual(before.deliveries);
      expect(after.deliveries).toEqual([expect.objectContaining({ target: "spool", status: "pending", attemptCount: 0, redeliverPending: true })]);
      expect(after.events.filter((e: any) => e.type === "redeliver_requested")).toHaveLength(1);
      expect(existsSync(join(spool, "t-409"))).toBe(false);
    } finally {
      app.delivery.start();
    }
    await until("the redelivery", async () => (await get(server, id)).deliveries[0].status === "succeeded");
    expect(existsSync(join(spool, "t-409", `${id}.mp4`))).toBe(true);
    // Attempted: another redelivery is accepted, and re-uses the delivery instead of adding one.
    rmSync(join(spool, "t-409", `${id}.mp4`));
    expect((await redeliver(server, id)).statusCode).toBe(202);
    await until("the second redelivery", async () => existsSync(join(spool, "t-409", `${id}.mp4`)));
    const v = await until("its outcome", async () => { const x = await get(server, id); return x.deliveries[0].status === "succeeded" && x; });
    expect(v.status).toBe("completed");
    expect(v.deliveries).toEqual([expect.objectContaining({ target: "spool", status: "succeeded", attemptCount: 2 })]);
  });

  test("the view lists the last 20 attempts of each delivery and counts them all", async () => {
    const { id } = await completedRecording(app, "spool", { metadata: { tenant: "t-cap" } });
    app.delivery.pause(); // these attempts are made up here, not by the loop
    try {
      const d = await app.store.addDelivery({ recordingId: id, target: "webhook:gone", kind: "notify", payload: { type: "recording.updated" } });
      for (let i = 1; i <= 25; i++) await app.store.recordAttempt(d.id, { ok: false, message: `failure ${i}`, retryInMs: 3600_000 });
    } finally {
      app.delivery.start();
    }
    const hook = (await get(server, id)).deliveries.find((x: any) => x.target === "webhook:gone");
    expect(hook.attemptCount).toBe(25);
    expect(hook.attempts.map((a: any) => a.message)).toEqual(Array.from({ length: 20 }, (_, i) => `failure ${i + 6}`));
    const doc = (await server.inject({ url: "/openapi.json" })).json();
    expect(JSON.stringify(doc)).toContain("The last 20 attempts");
  });
});

describe("giving up (delivery.giveUpAfterSeconds)", () => {
  test("a file delivery failing past the give-up time ends the recording failed, keeps the file; PATCH + redeliver delivers it", async () => {
    const { id, file, bytes } = await finishedRecording(quick, "spool", { metadata: { tenant: "blocked" } });
    const started = Date.now();
    const failed = await until("failed", async () => { const v = await get(quickServer, id); return v.status === "failed" && v; });
    expect(Date.now() - started).toBeGreaterThanOrEqual(500);
    expect(failed.error.code).toBe("delivery_failed");
    expect(failed.error.message).toContain("spool");
    expect(failed.error.message).toMatch(/EEXIST|ENOTDIR|exists|not a directory/i);
    expect(failed.error.message).toContain(`/v1/recordings/${id}/redeliver`);
    const spoolDelivery = failed.deliveries.find((d: any) => d.target === "spool");
    expect(spoolDelivery).toMatchObject({ status: "failed", nextAttemptAt: null });
    expect(spoolDelivery.attemptCount).toBeGreaterThanOrEqual(3); // retried until the deadline
    const attempts = spoolDelivery.attempts;
    expect(Date.parse(attempts.at(-1).at) - Date.parse(attempts[0].at)).toBeGreaterThanOrEqual(500); // the last one at the deadline (0.6 s after the first began)
    const gaveUp = failed.events.find((e: any) => e.type === "delivery_given_up");
    expect(gaveUp.message).toContain("spool");
    expect(gaveUp.data).toMatchObject({ target: "spool", kind: "file", attempts: spoolDelivery.attemptCount, lastError: attempts.at(-1).message });
    expect(failed.events.at(-1)).toMatchObject({ type: "status", status: "failed", reason: "delivery_failed" });
    // The file stays, and nothing new is queued for it.
    expect(existsSync(file)).toBe(true);
    expect(Buffer.compare((await quickServer.inject({ url: `/v1/recordings/${id}/file`, headers: auth() })).rawPayload, bytes)).toBe(0);
    await new Promise((r) => setTimeout(r, 300));
    const later = await get(quickServer, id);
    expect(later.deliveries.filter((d: any) => d.kind === "file")).toEqual([expect.objectContaining({ target: "spool", status: "failed", attemptCount: spoolDelivery.attemptCount })]);
    expect(later.status).toBe("failed");

    // failed with a file: the metadata may still be fixed, then redeliver puts it back to delivering.
    expect((await patch(quickServer, id, { tenant: "fixed" })).statusCode).toBe(200);
    expect((await get(quickServer, id)).status).toBe("failed");
    const r = await redeliver(quickServer, id);
    expect(r.statusCode).toBe(202);
    const done = await until("completed", async () => { const v = await get(quickServer, id); return v.status === "completed" && v; });
    expect(done.error).toBeNull();
    expect(done.endedAt).not.toBeNull();
    expect(Buffer.compare(readFileSync(join(quickSpool, "fixed", `${id}.mp4`)), bytes)).toBe(0);
    const statuses = done.events.filter((e: any) => e.type === "status").map((e: any) => `${e.status}/${e.reason}`);
    expect(statuses.slice(-4)).toEqual(["delivering/stopped", "failed/delivery_failed", "delivering/redeliver", "completed/delivered"]);
    expect(done.deliveries.filter((d: any) => d.kind === "file")).toEqual([expect.objectContaining({ target: "spool", status: "succeeded" })]);
  });

  test("a notify delivery (webhook) is given up the same way without changing the recording's status", async () => {
    const { id } = await completedRecording(quick, "hooks");
    const v = await until("the webhook given up", async () => {
      const x = await get(quickServer, id, HOOKS_KEY);
      return x.deliveries.length === 1 && x.deliveries[0].status === "failed" && x;
    });
    expect(v.deliveries[0]).toMatchObject({ target: "webhook:platform", kind: "notify", event: "recording.completed", nextAttemptAt: null });
    expect(v.deliveries[0].attempts.at(-1).message).toContain("503");
    expect(v.events.find((e: any) => e.type === "delivery_given_up")).toMatchObject({ data: { target: "webhook:platform", kind: "notify" } });
    expect(v).toMatchObject({ status: "completed", error: null });
    expect(receiver.received.filter((h) => h.recording === id).length).toBe(v.deliveries[0].attemptCount);
    // redeliver retries a given-up notification; the recording stays completed.
    expect((await redeliver(quickServer, id, HOOKS_KEY)).json()).toEqual({ scheduled: 1 });
    await until("a new attempt", async () => (await get(quickServer, id, HOOKS_KEY)).deliveries[0].attemptCount > v.deliveries[0].attemptCount);
    expect((await get(quickServer, id, HOOKS_KEY)).status).toBe("completed");
  });
});
