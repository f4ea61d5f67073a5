/**
 * Delivery with real parts: webhooks to an HTTP receiver on 127.0.0.1 (verified with the
 * standardwebhooks library), a spool directory, failures first and success on retry, every
 * attempt stored, `delivering` until the file is there, and redeliver by hand. (Fixing a stuck
 * delivery with PATCH, giving up and one redelivery at a time: test/api/delivery.test.ts.)
 */
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startSyncPage, type SyncPage } from "../../dev/sync-page.js";
import { startServer, type TestServer } from "../../dev/server.js";
import { startWebhookReceiver, type ReceivedHook, type WebhookReceiver } from "../helpers/webhooks.js";
import { scratchDir } from "../helpers/scratch.js";

const SECRET = `whsec_${randomBytes(32).toString("base64")}`;
const TERMINAL = ["completed", "failed", "aborted"];

let page: SyncPage;
let server: TestServer;
let receiver: WebhookReceiver;
let received: ReceivedHook[] = [];
let failFirst = 2;
let spoolRoot: string;

beforeAll(async () => {
  page = await startSyncPage();
  receiver = await startWebhookReceiver(SECRET, () => (failFirst-- > 0 ? 503 : 200));
  received = receiver.received;
  const dir = scratchDir("meetrec-delivery-");
  spoolRoot = join(dir, "spool");
  writeFileSync(spoolRoot, "a file where the spool directory should be: delivery must fail until it is gone");
  server = await startServer({ egress: { allowedOrigins: [page.origin] }, config: {
    delivery: { retry: { initialDelayMs: 300, maxDelayMs: 1000, factor: 2 }, pollIntervalMs: 100 },
    backends: {
      default: {
        apiKey: "test-key-0123456789abcdef",
        delivery: {
          webhooks: [{ name: "platform", url: receiver.url, secret: SECRET }],
          spool: { path: spoolRoot, subdirFromMetadata: "tenant" },
        },
      },
    },
  } });
});

afterAll(async () => {
  await server?.stop();
  await page?.close();
  await receiver?.close();
});

describe("delivery", () => {
  test("webhooks and spool fail first, succeed on retry; the recording is delivering until the file is there", async () => {
    const created = (await server.api("POST", "/v1/recordings", { url: page.url, maxDurationSeconds: 5, video: { width: 480, height: 270, fps: 15 }, metadata: { tenant: "school-7" } })).json();
    const delivering = await server.waitFor(created.id, (r) => r.status === "delivering" || TERMINAL.includes(r.status), 60_000);
    expect(delivering.status).toBe("delivering");
    expect(delivering.endReason).toBe("limit_reached");
    await new Promise((r) => setTimeout(r, 1500));
    const still = (await server.api("GET", `/v1/recordings/${created.id}`)).json();
    expect(still.status).toBe("delivering"); // the spool path is blocked
    const spool = still.deliveries.find((d: any) => d.target === "spool");
    expect(spool.status).toBe("pending");
    expect(spool.attempts.length).toBeGreaterThanOrEqual(2);
    expect(spool.attempts[0]).toMatchObject({ outcome: "error", message: expect.stringMatching(/EEXIST|ENOTDIR|exists|not a directory/i) });
    expect(Date.parse(spool.attempts[1].at) - Date.parse(spool.attempts[0].at)).toBeGreaterThanOrEqual(200);

    rmSync(spoolRoot); // unblock: the next retry succeeds
    const done = await server.waitFor(created.id, (r) => TERMINAL.includes(r.status), 30_000);
    expect(done.status).toBe("completed");
    expect(done.endReason).toBe("limit_reached");
    const file = join(spoolRoot, "school-7", `${created.id}.mp4`);
    const api = await server.api("GET", `/v1/recordings/${created.id}/file`);
    expect(Buffer.compare(readFileSync(file), api.body)).toBe(0);
    const sidecar = JSON.parse(readFileSync(join(spoolRoot, "school-7", `${created.id}.json`), "utf8"));
    expect(sidecar).toMatchObject({ id: created.id, metadata: { tenant: "school-7" }, file: { name: "recording.mp4" } });

    // Webhooks: every status change, in order, each signed; the first two answers were 503 and were retried with the same id.
    await new Promise((r) => setTimeout(r, 1500));
    expect(received.every((x) => x.verified)).toBe(true);
    const delivered = received.filter((x) => x.answered === 200);
    expect(delivered.map((x) => `${x.type}/${x.status}`)).toEqual([
      "recording.updated/starting", "recording.started/recording", "recording.updated/stopping", "recording.updated/finalizing",
      "recording.updated/delivering", "recording.completed/completed",
    ]);
    expect(received[0].answered).toBe(503);
    expect(received[1].id).toBe(received[0].id);
    expect(received[2].id).toBe(received[0].id);
    expect(new Set(delivered.map((x) => x.id)).size).toBe(delivered.length);
    const hooks = (await server.api("GET", `/v1/recordings/${created.id}`)).json().deliveries.filter((d: any) => d.kind === "notify");
    expect(hooks.every((d: any) => d.status === "succeeded" && d.target === "webhook:platform")).toBe(true);
    expect(hooks[0].attempts.map((a: any) => a.outcome)).toEqual(["error", "error", "ok"]);
    expect(hooks[0].attempts[0].message).toContain("503");
  });

  test("redeliver puts a lost spool file back", async () => {
    const list = (await server.api("GET", "/v1/recordings?status=completed")).json().recordings;
    const id = list[0].id;
    const file = join(spoolRoot, "school-7", `${id}.mp4`);
    rmSync(file);
    const r = await server.api("POST", `/v1/recordings/${id}/redeliver`);
    expect(r.status).toBe(202);
    expect(r.json().scheduled).toBeGreaterThanOrEqual(1);
    // The file is renamed into place before the sidecar and before the attempt is stored: wait for the attempt.
    const lastSpool = async () => (await server.api("GET", `/v1/recordings/${id}`)).json().deliveries.filter((d: any) => d.target === "spool").at(-1);
    for (let i = 0; i < 50 && (await lastSpool()).status !== "succeeded"; i++) await new Promise((res) => setTimeout(res, 100));
    expect((await lastSpool()).status).toBe("succeeded");
    expect(existsSync(file)).toBe(true);
  });

  test("per recording: only the spool, into its own sub-directory, and no webhooks", async () => {
    const before = received.length;
    const created = (await server.api("POST", "/v1/recordings", { url: page.url, maxDurationSeconds: 3, video: { width: 320, height: 180, fps: 10 }, metadata: { tenant: "school-7" }, delivery: { targets: ["spool"], spool: { subdir: "one-off" } } })).json();
    const rec = await server.waitFor(created.id, (r) => TERMINAL.includes(r.status), 60_000);
    expect(rec.status).toBe("completed");
    expect(existsSync(join(spoolRoot, "one-off", `${created.id}.mp4`))).toBe(true);
    expect(existsSync(join(spoolRoot, "school-7", `${created.id}.mp4`))).toBe(false);
    await new Promise((r) => setTimeout(r, 500));
    expect(received.slice(before).length).toBe(0);
    expect(rec.deliveries.map((d: any) => d.target)).toEqual(["spool"]);
  });

  test("a spool sub-directory name from metadata that is unsafe is refused at creation, and nothing is recorded", async () => {
    const before = (await server.api("GET", "/v1/recordings")).json().recordings.length;
    const res = await server.api("POST", "/v1/recordings", { url: page.url, maxDurationSeconds: 3, video: { width: 320, height: 180, fps: 10 }, metadata: { tenant: "../etc" } });
    expect(res.status).toBe(422);
    expect(res.json()).toMatchObject({ code: "validation_failed", errors: [{ field: "metadata.tenant" }] });
    expect((await server.api("GET", "/v1/recordings")).json().recordings.length).toBe(before);
    expect(existsSync(join(spoolRoot, "..", "etc"))).toBe(false);
  });
});
