/**
 * The egress policy at the door: `POST /v1/recordings` for a backend without `allowedOrigins`
 * (the auto-created `default` one, say) refuses meeting URLs and `goto` steps on loopback,
 * link-local, metadata and private addresses in every spelling, naming the rule, and creates
 * nothing; `egress.allow` lets a private range through. Real App, Fastify inject.
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
import { expectProblem } from "../helpers/problem.js";

const KEY = "open-backend-key-0123456789";
let dir: string;
let app: EmbeddedHost;
let server: FastifyInstance;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "meetrec-api-egress-"));
  app = await EmbeddedHost.start(parseConfig({ dataDir: dir, egress: { allow: ["10.20.0.0/16"] }, backends: { open: { apiKey: KEY } } }), createLogger("silent"));
  server = await buildServer(app, createLogger("silent"));
});

afterAll(async () => {
  await server?.close();
  await app?.close();
  rmSync(dir, { recursive: true, force: true });
});

const post = (body: unknown) => server.inject({ method: "POST", url: "/v1/recordings", headers: { authorization: `Bearer ${KEY}` }, payload: body as object });
const count = async () => (await server.inject({ url: "/v1/recordings", headers: { authorization: `Bearer ${KEY}` } })).json().recordings.length;

describe("POST /v1/recordings and the egress policy", () => {
  test.each([
    ["http://127.0.0.1:8080/metrics", "loopback"], ["http://2130706433:8080/", "loopback"], ["http://0x7f.0.0.1/", "loopback"],
    ["http://[::1]:8080/", "loopback"], ["http://[::ffff:127.0.0.1]/", "loopback"], ["http://localhost:8080/", "loopback"],
    ["http://169.254.169.254/latest/meta-data/?token=abc", "cloud_metadata"], ["http://[fe80::1]/", "link_local"],
    ["http://0.0.0.0/", "unspecified"], ["http://10.1.2.3/", "private"], ["http://192.168.0.10/", "private"], ["http://[fd00::5]/", "private"],
  ])("%s → 422 egress_refused (%s), nothing created", async (url, rule) => {
    const before = await count();
    const r = await post({ url });
    const p = expectProblem(r, 422, "egress_refused");
    expect(p.detail).toContain(`rule ${rule}`);
    expect(p.detail).not.toContain("token=abc");
    expect(await count()).toBe(before);
  });

  test("a goto step to loopback is refused the same way", async () => {
    const before = await count();
    const r = await post({ url: "http://10.20.1.1/meet", join: [{ goto: "http://127.0.0.1:8080/admin" }] });
    expect(r.statusCode).toBe(422);
    expect(r.json().code).toBe("egress_refused");
    expect(await count()).toBe(before);
  });

  test("egress.allow lets its range through (and nothing else)", async () => {
    const r = await post({ url: "http://10.20.1.1/meet" });
    expect(r.statusCode, r.body).toBe(201);
    await server.inject({ method: "POST", url: `/v1/recordings/${r.json().id}/stop`, headers: { authorization: `Bearer ${KEY}` } });
    expect((await post({ url: "http://10.21.1.1/meet" })).statusCode).toBe(422);
  });
});
