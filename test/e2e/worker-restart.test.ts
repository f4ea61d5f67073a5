/**
 * A cluster worker killed with `kill -9` — the worker alone, its capture processes left
 * running (re-parented to init) — while it records for a backend that keeps its media in its
 * own `dataDir`. When the worker restarts (same data directory, same configuration) it kills
 * them before it takes the recording up again in a new period. Regression: the worker used to
 * look for leftovers only under its global `{dataDir}/work`, so a backend's capture processes
 * (Xvfb, the browser still in the meeting, ffmpeg) outlived every restart.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startCluster, type Cluster } from "../../dev/cluster.js";
import { checkPage } from "../../dev/media-check.js";
import { API_KEY } from "../../dev/server.js";
import { startSyncPage, type SyncPage } from "../../dev/sync-page.js";
import { expectCaptureProcesses, recordingProcessesGone, stillRunning, untilEmpty } from "../helpers/processes.js";

const BG: [number, number, number] = [0x20, 0x60, 0xc0];
const TERMINAL = ["completed", "failed", "aborted"];
let page: SyncPage;
let cluster: Cluster;
let mediaDir: string;

beforeAll(async () => {
  page = await startSyncPage();
  mediaDir = mkdtempSync(join(tmpdir(), "meetrec-backend-media-"));
  cluster = await startCluster(["w1"], { backends: { default: { apiKey: API_KEY, allowedOrigins: [page.origin], dataDir: mediaDir } } });
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
  await page?.close();
  rmSync(mediaDir, { recursive: true, force: true });
});

describe("a worker killed -9 while recording for a backend with its own dataDir", () => {
  test("leaves no capture process once it restarts; the restarted worker continues the recording in a new period", async () => {
    const { api } = cluster;
    const t0 = Date.now();
    const { id } = (await api.api("POST", "/v1/recordings", { url: page.url, video: { width: 480, height: 270, fps: 15 }, maxDurationSeconds: 300 })).json();
    const live = await api.waitFor(id, (x) => x.segmentCount >= 3 || TERMINAL.includes(x.status), 60_000);
    expect(live.status).toBe("recording");
    // The backend's media root holds this run's scratch (and its process registry), not the worker's data directory.
    expect(readdirSync(join(mediaDir, "work", id)).length).toBe(1);
    const old = expectCaptureProcesses(id);
    const w1 = cluster.workers[0];
    const killedAt = Date.now();
    w1.child.kill("SIGKILL"); // the worker alone: what it started lives on
    await new Promise((r) => w1.child.once("exit", r));
    await new Promise((r) => setTimeout(r, 1000));
    expect(stillRunning(old).length, "capture processes outliving the killed worker").toBeGreaterThan(0);
    await cluster.startWorker("w1", { dataDir: w1.dataDir });
    expect(await untilEmpty(() => stillRunning(old), 15_000), "the killed worker's capture processes after its restart").toEqual([]);
    const resumed = await api.waitFor(id, (x) => (x.periods === 2 && x.segmentCount >= live.segmentCount + 3) || TERMINAL.includes(x.status), 90_000);
    expect(resumed.status).toBe("recording");
    const resumedSeenAt = Date.now();
    const stopSentAtMs = Date.now();
    await api.api("POST", `/v1/recordings/${id}/stop`);
    const rec = await api.waitFor(id, (x) => TERMINAL.includes(x.status), 90_000);
    expect(rec.status, JSON.stringify(rec.error)).toBe("completed");
    expect(rec.periods).toBe(2);
    expect(await recordingProcessesGone(id), "capture processes left").toEqual([]);
    const file = join(api.dir, "restarted.mp4");
    writeFileSync(file, (await api.api("GET", `/v1/recordings/${id}/file`)).body);
    // Both periods: the page live, sounding and in step in each, nothing shown outside the test's
    // clock, the gap bounded by kill → the test seeing period 2, plus the open segment the kill lost.
    const seen = checkPage(file, { bg: BG, requestedAtMs: t0, endedByMs: Date.now(), stopSentAtMs, maxMissingS: (resumedSeenAt - killedAt) / 1000 + 2 });
    expect(seen.runs.length).toBe(2);
  });
});
