/**
 * The recorder goes only where it is allowed: a real `meetrec serve` inside a private network
 * namespace records pages on an allowed origin that try to leave it — an HTTP redirect, a link
 * a join step clicks, a page that navigates itself while recording, subresources, a WebSocket
 * and a name that resolves to loopback — in Chromium and Firefox. Each test checks the
 * recording's answer and timeline, that the forbidden server never received a single request,
 * and that no token reached the timeline or the log.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { REPO_ROOT } from "../../dev/meeting.js";
import { createNetns, type Netns } from "../../dev/netns.js";
import { checkTiles, colourFraction, decodeFrames, frameRgb } from "../../dev/media-check.js";
import { recordingProcessesGone } from "../helpers/processes.js";
import { startServer, unixRequest, type TestServer } from "../../dev/server.js";

const OPEN_KEY = "open-backend-key-0123456789";
/** A backend that names the meeting origin but leaves subresources at the default (`public`). */
const PUBLIC_KEY = "public-requests-key-0123456789";
const TERMINAL = ["completed", "failed", "aborted"];
const BLUE: [number, number, number] = [0x20, 0x80, 0xff];
const RED: [number, number, number] = [0xff, 0, 0];

let netns: Netns;
let site: { a: string; b: string; c: string };
let siteHost: ChildProcess;
let dir: string;
let server: TestServer;

beforeAll(async () => {
  netns = createNetns("eg");
  // `ip netns exec` bind-mounts /etc/netns/NAME/hosts over /etc/hosts: the name resolves to
  // loopback only inside this namespace.
  mkdirSync(`/etc/netns/${netns.name}`, { recursive: true });
  writeFileSync(`/etc/netns/${netns.name}/hosts`, "127.0.0.1 localhost rebind.test\n::1 localhost\n");
  dir = mkdtempSync(join(tmpdir(), "meetrec-egress-"));
  const argv = netns.exec([process.execPath, "--import", "tsx", join(REPO_ROOT, "test/fixtures/egress-site-host.ts"), "--dir", dir]);
  siteHost = spawn(argv[0], argv.slice(1), { cwd: REPO_ROOT, stdio: ["pipe", "pipe", "inherit"] });
  site = await new Promise((resolve, reject) => {
    createInterface({ input: siteHost.stdout! }).on("line", (l) => { try { const m = JSON.parse(l); if (m.ready) resolve(m); } catch { /* not ours */ } });
    siteHost.once("exit", (c) => reject(new Error(`site host exited (${c})`)));
  });
  server = await startServer({
    netns, egress: { allowedOrigins: [site.a], allowedRequestOrigins: [site.c] },
    config: { backends: { open: { apiKey: OPEN_KEY }, pub: { apiKey: PUBLIC_KEY, allowedOrigins: [site.a] } } },
  });
}, 120_000);

afterAll(async () => {
  await server?.stop();
  siteHost?.kill("SIGTERM");
  await new Promise((r) => setTimeout(r, 300));
  netns?.close();
  if (netns) rmSync(`/etc/netns/${netns.name}`, { recursive: true, force: true });
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function hits(): Promise<{ a: string[]; b: string[]; c: string[] }> {
  return (await unixRequest(join(dir, "control.sock"), "GET", "/hits")).json();
}

async function record(body: Record<string, unknown>): Promise<any> {
  const r = await server.api("POST", "/v1/recordings", { video: { width: 640, height: 360, fps: 15 }, ...body });
  expect(r.status, r.body.toString()).toBe(201);
  const rec = await server.waitFor(r.json().id, (x) => TERMINAL.includes(x.status), 120_000);
  // Ended, refused or failed: nothing it started outlives it, wherever in the process tree.
  expect(await recordingProcessesGone(rec.id), "processes of the ended recording").toEqual([]);
  return rec;
}

const enc = encodeURIComponent;

/**
 * The recording's timeline and error, and the server's log, carry no token of the blocked URLs
 * (the recording's own `url` is the client's and is shown to it as sent).
 */
function expectNoSecrets(rec: { url?: string }): void {
  const text = JSON.stringify({ ...rec, url: undefined }) + server.log();
  for (const s of ["REDIRSECRET", "LINKSECRET", "NAVSECRET", "SUBSECRET"]) expect(text, `${s} leaked`).not.toContain(s);
}

describe("top-level navigations leave the allowed origin only to be refused", () => {
  for (const browser of ["chromium", "firefox"] as const) {
    test(`${browser}: an HTTP redirect to loopback fails origin_not_allowed, and nothing reaches the target`, async () => {
      const before = (await hits()).b.length;
      const rec = await record({ browser, url: `${site.a}/redirect?to=${enc(`${site.b}/admin?token=REDIRSECRET`)}`, maxDurationSeconds: 20 });
      expect(rec.status, JSON.stringify(rec.error)).toBe("failed");
      expect(rec.error.code).toBe("origin_not_allowed");
      const blocked = rec.events.find((e: any) => e.type === "navigation_blocked");
      expect(blocked?.data).toMatchObject({ url: `${site.b}/admin?…`, rule: "origin" });
      expect(rec.file ?? null).toBeNull();
      expect((await hits()).b.length).toBe(before);
      expect((await hits()).a).toContain("GET /redirect");
      expectNoSecrets(rec);
    });
  }

  test("chromium: a link a join step clicks fails the join with origin_not_allowed", async () => {
    const before = (await hits()).b.length;
    const rec = await record({ url: `${site.a}/page?link=${enc(`${site.b}/admin?token=LINKSECRET`)}`, join: [{ click: "#go" }, { wait: 3000 }], maxDurationSeconds: 20 });
    expect(rec.status).toBe("failed");
    expect(rec.error.code).toBe("origin_not_allowed");
    expect(rec.events.some((e: any) => e.type === "navigation_blocked" && e.data.url === `${site.b}/admin?…`)).toBe(true);
    expect((await hits()).b.length).toBe(before);
    expectNoSecrets(rec);
  });

  test("chromium: a window the page opens is closed at once, and its URL never reached", async () => {
    const before = (await hits()).b.length;
    const rec = await record({ url: `${site.a}/page?bg=2080ff&popup=${enc(`${site.b}/admin?token=POPSECRET`)}`, join: [{ click: "#pop" }, { wait: 2000 }], maxDurationSeconds: 4 });
    expect(rec.status, JSON.stringify(rec.error)).toBe("completed");
    expect(rec.events.some((e: any) => e.type === "popup_closed"), JSON.stringify(rec.events.map((e: any) => e.type))).toBe(true);
    expect((await hits()).b.length).toBe(before);
    expect(JSON.stringify(rec.events) + server.log()).not.toContain("POPSECRET");
  });

  test("chromium: a page that navigates itself while recording fails origin_not_allowed and keeps what it recorded", async () => {
    const before = (await hits()).b.length;
    const rec = await record({ url: `${site.a}/page?bg=2080ff&after=6000&go=${enc(`${site.b}/admin?token=NAVSECRET`)}`, maxDurationSeconds: 40 });
    expect(rec.status).toBe("failed");
    expect(rec.error.code).toBe("origin_not_allowed");
    const statuses = rec.events.map((e: any) => e.status).filter(Boolean);
    expect(statuses).toContain("recording");
    expect(rec.events.some((e: any) => e.type === "navigation_blocked")).toBe(true);
    expect((await hits()).b.length).toBe(before);
    // The media before the refusal is kept: the allowed page, moving, never the forbidden one.
    expect(rec.file?.durationSeconds).toBeGreaterThan(3);
    const r = await server.api("GET", `/v1/recordings/${rec.id}/file`);
    expect(r.status).toBe(200);
    const file = join(server.dir, `${rec.id}.mp4`);
    writeFileSync(file, r.body);
    // Every second up to the refusal (the page navigates away 6 s after loading): the allowed page, moving.
    checkTiles(decodeFrames(file), [{ name: "the allowed page", rgb: BLUE }], { spans: [{ from: 1, to: Math.min(5, rec.file.durationSeconds) }] });
    const last = frameRgb(file, rec.file.durationSeconds - 0.3);
    expect(colourFraction(last, RED)).toBeLessThan(0.01);
    expectNoSecrets(rec);
  });
});

describe("what a page loads", () => {
  for (const browser of ["chromium", "firefox"] as const) {
    test(`${browser}: only the allowed request origins; an image, an iframe, a fetch, a WebSocket to loopback and a name resolving to loopback never arrive`, async () => {
      const before = (await hits()).b.length;
      const cBefore = (await hits()).c.length;
      const rec = await record({ browser, url: `${site.a}/page?bg=2080ff&sub=1`, maxDurationSeconds: 8 });
      expect(rec.status, JSON.stringify(rec.error)).toBe("completed");
      const h = await hits();
      expect(h.b.slice(before), "requests that reached the forbidden server").toEqual([]);
      expect(h.c.length - cBefore, "the allowed request origin is reached").toBeGreaterThan(2);
      const blocked = rec.events.filter((e: any) => e.type === "request_blocked");
      expect(blocked.length).toBeGreaterThan(0);
      expect(JSON.stringify(blocked)).toContain("127.0.0.1");
      expectNoSecrets(rec);
    });
  }
});

describe("the egress proxy behind the browser", () => {
  test("chromium, subresources left public: loopback by address, by a name that resolves to it, and over a WebSocket never arrive", async () => {
    const as = (method: string, path: string, body?: unknown) => unixRequest(server.socket, method, path, { body, headers: { authorization: `Bearer ${PUBLIC_KEY}` } });
    const before = await hits();
    const r = await as("POST", "/v1/recordings", { url: `${site.a}/page?bg=2080ff&sub=1`, maxDurationSeconds: 8, video: { width: 640, height: 360, fps: 15 } });
    expect(r.status, r.body.toString()).toBe(201);
    let rec: any;
    for (const end = Date.now() + 90_000; Date.now() < end;) {
      rec = (await as("GET", `/v1/recordings/${r.json().id}`)).json();
      if (TERMINAL.includes(rec.status)) break;
      await new Promise((res) => setTimeout(res, 300));
    }
    expect(rec.status, JSON.stringify(rec.error)).toBe("completed");
    const h = await hits();
    expect(h.b.slice(before.b.length), "requests that reached the forbidden server").toEqual([]);
    expect(h.c.slice(before.c.length), "loopback is not public, so the request origin is not reached either").toEqual([]);
    expect(h.a.slice(before.a.length)).toContain("GET /page");
    const blocked = rec.events.filter((e: any) => e.type === "request_blocked").map((e: any) => e.data);
    expect(blocked.some((d: any) => d.host === `rebind.test:${new URL(site.b).port}` && d.rule === "loopback"), JSON.stringify(blocked)).toBe(true);
    expect(blocked.some((d: any) => d.host === `127.0.0.1:${new URL(site.b).port}` && d.rule === "loopback"), JSON.stringify(blocked)).toBe(true);
    expectNoSecrets(rec);
  });
});

describe("at the door", () => {
  const open = (body: unknown) => unixRequest(server.socket, "POST", "/v1/recordings", { body, headers: { authorization: `Bearer ${OPEN_KEY}` } });

  test("a backend without allowedOrigins cannot open a name that resolves to loopback, nor loopback itself", async () => {
    const before = (await unixRequest(server.socket, "GET", "/v1/recordings", { headers: { authorization: `Bearer ${OPEN_KEY}` } })).json().recordings.length;
    for (const [url, rule] of [[`http://rebind.test:${new URL(site.b).port}/admin`, "loopback"], [`${site.b}/admin`, "loopback"], ["http://localhost:1/", "loopback"]] as const) {
      const r = await open({ url });
      expect(r.status, url).toBe(422);
      expect(r.headers["content-type"]).toMatch(/^application\/problem\+json/);
      const p = r.json();
      expect(p.code).toBe("egress_refused");
      expect(p.detail).toContain(`rule ${rule}`);
    }
    const after = (await unixRequest(server.socket, "GET", "/v1/recordings", { headers: { authorization: `Bearer ${OPEN_KEY}` } })).json().recordings.length;
    expect(after).toBe(before);
    expect((await hits()).b.filter((x) => x.includes("admin"))).toEqual([]);
  });
});

afterAll(() => {
  // Nothing the tests started may outlive them (the browsers are children of the server).
  try { execFileSync("pkill", ["-KILL", "-f", dir]); } catch { /* none */ }
});
