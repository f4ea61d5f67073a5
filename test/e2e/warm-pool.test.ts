/**
 * Warm capture stacks (`capture.warmBrowsers`): the server keeps a display, a sink and a
 * Chromium on `about:blank` ready; a recording of the default frame size takes one, opens its
 * page in it and records it as usual; the stack is never used again, every one of its processes
 * ends with the recording, and the pool refills with a new stack. A recording of another size
 * starts cold. The server also asks for a short first segment (`capture.firstSegmentSeconds`). Against the local sync page on 127.0.0.1.
 */
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startSyncPage, type SyncPage } from "../../dev/sync-page.js";
import { checkPage } from "../../dev/media-check.js";
import { startServer, type TestServer } from "../../dev/server.js";
import { anyRecordingProcesses, captureRoles, recordingProcessesGone, untilEmpty, type CaptureProcess } from "../helpers/processes.js";
import { until } from "../helpers/until.js";

const BG: [number, number, number] = [0x20, 0x60, 0xc0];
const TERMINAL = ["completed", "failed", "aborted"];
let page: SyncPage;
let server: TestServer;

/** The processes of every warm stack now, by stack id (`warm-…`). */
function warmStacks(): Map<string, CaptureProcess[]> {
  const out = new Map<string, CaptureProcess[]>();
  for (const p of anyRecordingProcesses()) if (p.recording.startsWith("warm-")) out.set(p.recording, [...(out.get(p.recording) ?? []), p]);
  return out;
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The value of metric `name` (with exactly `labels`, e.g. `stack="warm"`), or undefined. */
async function metric(name: string, labels: string): Promise<number | undefined> {
  const text = (await server.api("GET", "/metrics")).body.toString();
  const line = text.split("\n").find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1));
}

/** One warm stack is up and complete (display and browser): its id and processes. */
async function oneReadyStack(): Promise<[string, CaptureProcess[]]> {
  await until("the pool to hold one warm stack", async () => (await pause(200), (await metric("meetrec_warm_stacks", "worker=")) === 1), 30_000);
  const stacks = [...warmStacks()];
  expect(stacks.length, JSON.stringify(stacks.map(([id]) => id))).toBe(1);
  expect(captureRoles(stacks[0][1])).toEqual(["display", "browser"]);
  return stacks[0];
}

beforeAll(async () => {
  page = await startSyncPage();
  server = await startServer({
    egress: { allowedOrigins: [page.origin] },
    env: { MEETREC_CONCURRENCY: "1", MEETREC_CAPTURE__WARM_BROWSERS: "1", MEETREC_VIDEO__WIDTH: "640", MEETREC_VIDEO__HEIGHT: "360", MEETREC_VIDEO__FPS: "30", MEETREC_CAPTURE__FIRST_SEGMENT_SECONDS: "0.5" },
  });
});
afterAll(async () => {
  await server?.stop();
  await page?.close();
});

describe("warm capture stacks", () => {
  test("a recording takes the warm stack, records its page in it, and the stack is replaced by a new one, never reused", async () => {
    const [stackId, stackProcs] = await oneReadyStack();
    const t0 = Date.now();
    const { id } = (await server.api("POST", "/v1/recordings", { url: page.url })).json();
    const rec = await server.waitFor(id, (x) => x.status === "recording" || TERMINAL.includes(x.status), 60_000);
    expect(rec.status, JSON.stringify(rec.error)).toBe("recording");
    expect(await metric("meetrec_capture_starts_total", 'stack="warm"')).toBe(1);
    // The recording started no display and no browser of its own: it runs on the warm stack's, which still run.
    expect(captureRoles(anyRecordingProcesses().filter((p) => p.recording === id))).toEqual(["encoder"]);
    expect(stackProcs.every((p) => anyRecordingProcesses().some((q) => q.pid === p.pid && q.startTicks === p.startTicks)), "the warm stack's processes run on").toBe(true);
    // capture.firstSegmentSeconds: the live playlist's first segment is 0.5 s, the next ones 2 s.
    await server.waitFor(id, (x) => x.segmentCount >= 3 || TERMINAL.includes(x.status), 60_000);
    const extinf = [...(await server.api("GET", `/v1/recordings/${id}/live.m3u8`)).body.toString().matchAll(/#EXTINF:([\d.]+)/g)].map((m) => Number(m[1]));
    expect(extinf.length, extinf.join(" ")).toBeGreaterThanOrEqual(3);
    expect(extinf[0]).toBeCloseTo(0.5, 1);
    expect(extinf[1]).toBeCloseTo(2, 1);
    await new Promise((r) => setTimeout(r, 3000));
    const stopSentAtMs = Date.now();
    await server.api("POST", `/v1/recordings/${id}/stop`);
    const done = await server.waitFor(id, (x) => TERMINAL.includes(x.status), 60_000);
    expect(done.status, JSON.stringify(done.error)).toBe("completed");
    const file = join(server.dir, "warm.mp4");
    writeFileSync(file, (await server.api("GET", `/v1/recordings/${id}/file`)).body);
    const seen = checkPage(file, { bg: BG, requestedAtMs: t0, endedByMs: Date.now(), stopSentAtMs });
    expect(seen.probe.video?.width).toBe(640);
    // Every process of the used stack ended with its recording; its scratch directory is gone.
    expect(await recordingProcessesGone(stackId), "the used warm stack's processes").toEqual([]);
    expect(await recordingProcessesGone(id)).toEqual([]);
    expect(existsSync(join(server.dataDir, "work", stackId)), "the warm stack's scratch directory").toBe(false);
    // The pool refills with another stack (REFILL_DELAY_MS after the take: checked after the
    // file, so that no browser launches during the part of the recording the sync check judges).
    const [nextId] = await oneReadyStackBeside(stackId);
    expect(nextId).not.toBe(stackId);
    // The next recording gets the new stack, not the used one.
    const second = (await server.api("POST", "/v1/recordings", { url: page.url })).json();
    await server.waitFor(second.id, (x) => x.segmentCount >= 1 || TERMINAL.includes(x.status), 60_000);
    expect(await metric("meetrec_capture_starts_total", 'stack="warm"')).toBe(2);
    await server.api("POST", `/v1/recordings/${second.id}/stop`);
    expect((await server.waitFor(second.id, (x) => TERMINAL.includes(x.status), 60_000)).status).toBe("completed");
    expect(await recordingProcessesGone(nextId)).toEqual([]);
  });

  test("a recording of another frame size starts cold and leaves the waiting stack alone", async () => {
    const [stackId, stackProcs] = await oneReadyStack();
    const { id } = (await server.api("POST", "/v1/recordings", { url: page.url, video: { width: 480, height: 270, fps: 15 } })).json();
    const rec = await server.waitFor(id, (x) => x.status === "recording" || TERMINAL.includes(x.status), 60_000);
    expect(rec.status, JSON.stringify(rec.error)).toBe("recording");
    expect(await metric("meetrec_capture_starts_total", 'stack="cold"')).toBe(1);
    expect(captureRoles(anyRecordingProcesses().filter((p) => p.recording === id))).toEqual(["display", "browser", "encoder"]);
    await server.waitFor(id, (x) => x.segmentCount >= 1 || TERMINAL.includes(x.status), 60_000);
    await server.api("POST", `/v1/recordings/${id}/stop`);
    expect((await server.waitFor(id, (x) => TERMINAL.includes(x.status), 60_000)).status).toBe("completed");
    expect(await recordingProcessesGone(id)).toEqual([]);
    expect([...warmStacks().keys()]).toEqual([stackId]);
    expect(stackProcs.every((p) => anyRecordingProcesses().some((q) => q.pid === p.pid)), "the waiting stack still runs").toBe(true);
  });

  test("stopping the server closes the waiting stack", async () => {
    const [stackId] = await oneReadyStack();
    await server.stop();
    expect(await untilEmpty(() => anyRecordingProcesses().filter((p) => p.recording === stackId))).toEqual([]);
  });
});

/** Waits for a ready warm stack other than `used`; returns it. */
async function oneReadyStackBeside(used: string): Promise<[string, CaptureProcess[]]> {
  await until("the pool to refill", async () => (await pause(200), (await metric("meetrec_warm_stacks", "worker=")) === 1 && [...warmStacks().keys()].some((k) => k !== used)), 30_000);
  const other = [...warmStacks()].filter(([k]) => k !== used);
  expect(other.length).toBe(1);
  expect(captureRoles(other[0][1])).toEqual(["display", "browser"]);
  return other[0];
}
