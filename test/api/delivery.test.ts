/**
 * Delivery through the API against a real App (SQLite store, delivery loop, a local spool
 * directory in a temp dir): what a recording's targets need from the request is checked at
 * `POST /v1/recordings`. No meeting is recorded: POSTed recordings stay `queued`
 * (`capacity.minFreeMemoryBytes` is out of reach) until they are stopped.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { buildServer } from "../../src/api/index.js";
import { App } from "../../src/app/index.js";
import { parseConfig } from "../../src/config/index.js";
import { createLogger } from "../../src/util/log.js";

const KEY = "spool-backend-key-0123456789";

let dir: string;
let app: App;
let server: FastifyInstance;
let spool: string;

/** A config with a spool (sub-directory from `metadata.tenant`) and e-mail backend. */
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
    },
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "meetrec-api-delivery-"));
  spool = join(dir, "spool");
  mkdirSync(spool);
  writeFileSync(join(spool, "blocked"), "a file where the tenant's sub-directory should be: delivery there fails");
  app = await App.start(config(join(dir, "data"), spool, { retry: { initialDelayMs: 600_000, maxDelayMs: 600_000 }, pollIntervalMs: 20 }), createLogger("silent"));
  server = await buildServer(app, createLogger("silent"));
});

afterAll(async () => {
  await server?.close();
  await app?.close();
  rmSync(dir, { recursive: true, force: true });
});

const auth = (key = KEY) => ({ authorization: `Bearer ${key}` });

function expectProblem(res: { statusCode: number; headers: Record<string, unknown>; json(): any }, status: number, code: string) {
  expect(res.statusCode).toBe(status);
  expect(res.headers["content-type"]).toMatch(/^application\/problem\+json/);
  const p = res.json();
  expect(p).toMatchObject({ status, code, type: `urn:meetrec:problem:${code}` });
  expect(p.detail.length).toBeGreaterThan(10);
  return p;
}

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
