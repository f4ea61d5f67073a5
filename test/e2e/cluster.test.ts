/**
 * Cluster mode on real engines: Redis and PostgreSQL from Debian, s3rver as the segment bucket,
 * one `serve --role api` and several `meetrec worker` processes on loopback, recording a local
 * test page. A worker killed with everything it runs (machine gone) loses its recording to
 * another worker within 10 s, which continues it in a new period; SIGTERM hands a recording
 * over; a Redis restart does not end a recording; stops reach whichever worker holds it.
 */
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { CopyObjectCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { Redis } from "ioredis";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { REPO_ROOT } from "../../dev/meeting.js";
import { startSyncPage, type SyncPage } from "../../dev/sync-page.js";
import { checkPage, type PageExpectation, type PageReport } from "../../dev/media-check.js";
import { startCluster, type Cluster } from "../../dev/cluster.js";
import { expectCaptureProcesses, recordingProcessesGone, stillRunning, untilEmpty } from "../helpers/processes.js";
import { descendants, type TestServer } from "../../dev/server.js";
import { startWebhookReceiver, type WebhookReceiver } from "../helpers/webhooks.js";

const BG: [number, number, number] = [0x20, 0x60, 0xc0];
const TERMINAL = ["completed", "failed", "aborted"];
const VIDEO = { width: 480, height: 270, fps: 15 };
let page: SyncPage;
let cluster: Cluster;
let api: TestServer;
let redis: Cluster["redis"];
let config: Cluster["config"];
let workers: TestServer[];

const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
let receiver: WebhookReceiver;

beforeAll(async () => {
  page = await startSyncPage();
  receiver = await startWebhookReceiver(SECRET);
  cluster = await startCluster(["w1", "w2"], {
    backends: { default: { apiKey: "test-key-0123456789abcdef", allowedOrigins: [page.origin], delivery: { webhooks: [{ name: "platform", url: receiver.url, secret: SECRET }] } } },
  });
  ({ api, redis, config, workers } = cluster);
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
  await receiver?.close();
  await page?.close();
});

const startWorker = (name: string) => cluster.startWorker(name);
const holderOf = (rec: any) => cluster.holderOf(rec);
const killMachine = (w: TestServer) => cluster.killMachine(w);

/**
 * Downloads the file and checks it as a viewer would, against the test's clock (`checkPage`):
 * the page live, sounding and in step in every period, shown from after the request to the stop,
 * with at most `maxMissingS` missing in between.
 */
async function checkFile(id: string, rec: any, name: string, exp: Omit<PageExpectation, "bg" | "endedByMs">): Promise<PageReport> {
  const file = join(api.dir, name);
  const res = await api.api("GET", `/v1/recordings/${id}/file`);
  expect(res.status).toBe(200);
  writeFileSync(file, res.body);
  expect(res.body.length).toBe(rec.file.bytes);
  return checkPage(file, { bg: BG, endedByMs: Date.now(), ...exp });
}

describe("cluster", () => {
  test("the API reports the workers and their capacity", async () => {
    const ready = await api.api("GET", "/readyz");
    expect(ready.status).toBe(200);
    expect(ready.json().workers.map((w: any) => w.name).sort()).toEqual(["w1", "w2"]);
  });

  test("kill -9 of the worker holding a live recording: another continues it within 10 s; the file has both periods", async () => {
    const t0 = Date.now();
    const { id } = (await api.api("POST", "/v1/recordings", { url: page.url, video: VIDEO, maxDurationSeconds: 300 })).json();
    const live = await api.waitFor(id, (x) => x.segmentCount >= 4 || TERMINAL.includes(x.status), 60_000);
    expect(live.status).toBe("recording");
    // Live HLS through the stateless API: playlist and segments come from the bucket.
    const playlist = await api.api("GET", `/v1/recordings/${id}/live.m3u8`);
    expect(playlist.status).toBe(200);
    expect(playlist.body.toString()).toContain('#EXT-X-MAP:URI="media/p1/init.mp4"');
    expect((await api.api("GET", `/v1/recordings/${id}/media/p1/000001.m4s`)).status).toBe(200);
    const holder = holderOf(live);
    expect(live.worker).toMatch(/^w[12]$/); // the API names the machine recording it
    const onHolder = expectCaptureProcesses(id);
    const killedAt = Date.now();
    await killMachine(holder);
    try {
      // The machine is gone: so is every process of its session, those re-parented to init too.
      expect(await untilEmpty(() => stillRunning(onHolder)), "the killed worker's capture processes").toEqual([]);
      const taken = await api.waitFor(id, (x) => x.events.some((e: any) => e.type === "taken_over") || TERMINAL.includes(x.status), 30_000);
      const takenAt = Date.parse(taken.events.find((e: any) => e.type === "taken_over").at);
      expect(takenAt - killedAt, "failover time").toBeLessThanOrEqual(10_000);
      await api.waitFor(id, (x) => x.periods === 2 || TERMINAL.includes(x.status), 60_000);
      const resumedSeenAt = Date.now();
      const resumed = await api.waitFor(id, (x) => (x.periods === 2 && x.segmentCount >= live.segmentCount + 3) || TERMINAL.includes(x.status), 60_000);
      expect(resumed.status).toBe("recording");
      const other = holderOf(resumed);
      expect(other).not.toBe(holder);
      expect(resumed.worker).toMatch(/^w[12]$/);
      expect(resumed.worker).not.toBe(live.worker);
      // The stop reaches the worker that holds the recording now.
      const stopAt = Date.now();
      expect((await api.api("POST", `/v1/recordings/${id}/stop`)).status).toBe(202);
      const rec = await api.waitFor(id, (x) => TERMINAL.includes(x.status), 90_000);
      expect(rec.status, JSON.stringify(rec.error)).toBe("completed");
      expect(rec.endReason).toBe("stopped");
      expect(rec.periods).toBe(2);
      await api.waitFor(id, (x) => x.worker === null, 10_000); // released once its run has ended
      expect(await recordingProcessesGone(id), "capture processes left").toEqual([]);
      const p2 = rec.events.find((e: any) => e.type === "period_started" && e.data.period === 2);
      expect(p2.data.reason).toBe("resume");
      // The gap a viewer sees is bounded by the test's clock: the open segment the kill lost (≤ 2 s)
      // plus kill → the test seeing period 2 (whose first segment had closed by then).
      const bound = (resumedSeenAt - killedAt) / 1000 + 2;
      const seen = await checkFile(id, rec, "failover.mp4", { requestedAtMs: t0, stopSentAtMs: stopAt, maxMissingS: bound });
      console.log(`failover: taken over ${((takenAt - killedAt) / 1000).toFixed(1)} s after the kill; the viewer misses ${seen.missingS.toFixed(1)} s (bound ${bound.toFixed(1)} s)`);
      expect(seen.runs.length).toBe(2);
      // Webhooks: queued by whichever worker changed the status, sent once by the API.
      await new Promise((r) => setTimeout(r, 1500));
      const mine = receiver.received.filter((h) => h.recording === id);
      expect(mine.map((h) => `${h.type}/${h.status}`)).toEqual(["recording.updated/starting", "recording.started/recording", "recording.updated/stopping", "recording.updated/finalizing", "recording.completed/completed"]);
      expect(mine.every((h) => h.verified)).toBe(true);
      expect(new Set(mine.map((h) => h.id)).size).toBe(mine.length);
      const metrics = (await other.api("GET", "/metrics")).body.toString();
      expect(metrics).toMatch(/^meetrec_failovers_total\{reason="failover"\} 1$/m);
    } finally {
      await startWorker("w3"); // back to two workers, whatever happened above
    }
  });

  test("pause through the API: the holder follows; killed while paused, the next worker joins and stays paused until resume", async () => {
    const t0 = Date.now();
    const { id } = (await api.api("POST", "/v1/recordings", { url: page.url, video: VIDEO, maxDurationSeconds: 300 })).json();
    const live = await api.waitFor(id, (x) => x.segmentCount >= 3 || TERMINAL.includes(x.status), 60_000);
    expect(live.status).toBe("recording");
    const pausedAt = Date.now();
    const res = await api.api("POST", `/v1/recordings/${id}/pause`);
    expect(res.status).toBe(202);
    expect(res.json().paused).toBe(true);
    const paused = await api.waitFor(id, (x) => x.events.some((e: any) => e.type === "paused") || TERMINAL.includes(x.status), 10_000);
    expect(paused.status).toBe("recording");
    const holder = holderOf(paused);
    await killMachine(holder);
    try {
      const taken = await api.waitFor(id, (x) => x.events.some((e: any) => e.type === "taken_over") || TERMINAL.includes(x.status), 30_000);
      expect(taken.status).toBe("recording");
      expect(taken.paused, "still paused after the take-over").toBe(true);
      await new Promise((r) => setTimeout(r, 5000)); // the new holder has joined; it must capture nothing
      const still = await api.waitFor(id, () => true);
      expect(still.periods, "no period while paused").toBe(1);
      expect(still.segmentCount).toBe(paused.segmentCount);
      const resumedAt = Date.now();
      expect((await api.api("POST", `/v1/recordings/${id}/resume`)).status).toBe(202);
      const resumed = await api.waitFor(id, (x) => (x.periods === 2 && x.segmentCount >= paused.segmentCount + 3) || TERMINAL.includes(x.status), 60_000);
      expect(resumed.status).toBe("recording");
      expect(resumed.worker).not.toBe(live.worker);
      const stopAt = Date.now();
      expect((await api.api("POST", `/v1/recordings/${id}/stop`)).status).toBe(202);
      const rec = await api.waitFor(id, (x) => TERMINAL.includes(x.status), 90_000);
      expect(rec.status, JSON.stringify(rec.error)).toBe("completed");
      expect(rec.events.filter((e: any) => e.type === "period_started").map((e: any) => e.data.reason)).toEqual(["start", "unpause"]);
      const seen = await checkFile(id, rec, "paused-failover.mp4", { requestedAtMs: t0, stopSentAtMs: stopAt, maxMissingS: (resumedAt - pausedAt) / 1000 + 3 });
      expect(seen.runs.length).toBe(2);
      // Nothing of the pause is in the file (1 s of the poll and the closing segment allowed).
      expect(seen.runs[0].wallToMs).toBeLessThanOrEqual(pausedAt + 1500);
      expect(seen.runs[1].wallFromMs).toBeGreaterThanOrEqual(resumedAt - 300);
      expect(await recordingProcessesGone(id), "capture processes left").toEqual([]);
    } finally {
      await startWorker("w5"); // back to two workers, whatever happened above
    }
  });

  test("SIGTERM on the holder hands the recording over to another worker in seconds", async () => {
    const t0 = Date.now();
    const { id } = (await api.api("POST", "/v1/recordings", { url: page.url, video: VIDEO, maxDurationSeconds: 300 })).json();
    const live = await api.waitFor(id, (x) => x.segmentCount >= 3 || TERMINAL.includes(x.status), 60_000);
    const holder = holderOf(live);
    const termAt = Date.now();
    holder.child.kill("SIGTERM");
    try {
      await api.waitFor(id, (x) => x.periods === 2 || TERMINAL.includes(x.status), 60_000);
      const resumedSeenAt = Date.now();
      const resumed = await api.waitFor(id, (x) => (x.periods === 2 && x.segmentCount >= live.segmentCount + 2) || TERMINAL.includes(x.status), 60_000);
      expect(resumed.status).toBe("recording");
      expect(resumed.events.map((e: any) => e.type)).toEqual(expect.arrayContaining(["handed_over", "taken_over"]));
      const p2 = resumed.events.find((e: any) => e.type === "period_started" && e.data.period === 2);
      expect(p2.data.gapMs).toBeLessThan(8000);
      await new Promise((r) => holder.child.exitCode !== null ? r(null) : holder.child.once("exit", r));
      expect(holder.child.exitCode).toBe(0);
      const stopSentAtMs = Date.now();
      await api.api("POST", `/v1/recordings/${id}/stop`);
      const rec = await api.waitFor(id, (x) => TERMINAL.includes(x.status), 90_000);
      expect(rec.status, JSON.stringify(rec.error)).toBe("completed");
      expect(rec.periods).toBe(2);
      // A hand-over closes the open segment: the viewer misses only SIGTERM → the new period.
      const seen = await checkFile(id, rec, "handover.mp4", { requestedAtMs: t0, stopSentAtMs, maxMissingS: (resumedSeenAt - termAt) / 1000 });
      expect(seen.runs.length).toBe(2);
    } finally {
      await startWorker("w4"); // back to two workers, whatever happened above
    }
  });

  test("a worker frozen past its lock (SIGSTOP 9 s) is fenced when it wakes: one recording, two periods, no second writer", async () => {
    const t0 = Date.now();
    const { id } = (await api.api("POST", "/v1/recordings", { url: page.url, video: VIDEO, maxDurationSeconds: 300 })).json();
    const live = await api.waitFor(id, (x) => x.segmentCount >= 3 || TERMINAL.includes(x.status), 60_000);
    const holder = holderOf(live);
    const onHolder = expectCaptureProcesses(id);
    const frozen = [holder.child.pid!, ...descendants(holder.child.pid!).map((d) => d.pid)];
    expect(onHolder.map((p) => p.pid).filter((pid) => frozen.includes(pid)).length, "capture processes frozen").toBeGreaterThan(0);
    const frozenAt = Date.now();
    for (const pid of frozen) { try { process.kill(pid, "SIGSTOP"); } catch { /* gone */ } }
    const taken = await api.waitFor(id, (x) => x.events.some((e: any) => e.type === "taken_over") || TERMINAL.includes(x.status), 30_000);
    expect(taken.status).toBe("recording");
    await new Promise((r) => setTimeout(r, Math.max(0, 9000 - (Date.now() - Date.parse(taken.events.find((e: any) => e.type === "taken_over").at)))));
    for (const pid of frozen) { try { process.kill(pid, "SIGCONT"); } catch { /* gone */ } }
    // Awake again, the old holder finds the recording claimed by another worker and leaves it.
    expect(await untilEmpty(() => stillRunning(onHolder), 15_000), "the fenced worker's capture processes").toEqual([]);
    expect(holder.log()).toContain("another worker holds this recording now; leaving it");
    const p2 = await api.waitFor(id, (x) => x.periods === 2 && x.segmentCount >= live.segmentCount + 3, 60_000);
    const p2SeenAt = Date.now();
    const p2StartedAt = Date.parse(p2.events.find((e: any) => e.type === "period_started" && e.data.period === 2).at);
    expect(p2StartedAt).toBeLessThan(p2SeenAt);
    const stopSentAtMs = Date.now();
    await api.api("POST", `/v1/recordings/${id}/stop`);
    const rec = await api.waitFor(id, (x) => TERMINAL.includes(x.status), 90_000);
    expect(rec.status, JSON.stringify(rec.error)).toBe("completed");
    expect(rec.periods).toBe(2);
    // Missed: the open segment at the freeze (≤ 2 s) and freeze → the take-over's first frame
    // (before the test saw period 2 with 3 more segments, i.e. ≥ 6 s of it).
    const seen = await checkFile(id, rec, "frozen.mp4", { requestedAtMs: t0, stopSentAtMs, maxMissingS: (p2SeenAt - frozenAt) / 1000 - 4 });
    expect(seen.runs.length).toBe(2);
  });

  test("Redis restarted during a recording: the recording completes", async () => {
    const t0 = Date.now();
    const { id } = (await api.api("POST", "/v1/recordings", { url: page.url, video: VIDEO, maxDurationSeconds: 300 })).json();
    const live = await api.waitFor(id, (x) => x.segmentCount >= 3 || TERMINAL.includes(x.status), 60_000);
    expect(live.status).toBe("recording");
    const holder = holderOf(live);
    const killedAt = Date.now();
    await redis.kill();
    await new Promise((r) => setTimeout(r, 3000));
    await redis.start();
    // If the lock lapsed meanwhile, the job comes back (to the same worker: it carries on; to
    // another: a new period). Either way the recording goes on; wait until it has for 5 s.
    const during = await api.waitFor(id, (x) => {
      const lastPeriod = Date.parse(x.events.filter((e: any) => e.type === "period_started").at(-1).at);
      return TERMINAL.includes(x.status) || (x.segmentCount >= live.segmentCount + 4 && Date.now() - lastPeriod > 5000);
    }, 60_000);
    expect(during.status, JSON.stringify({ error: during.error, events: during.events.slice(-8) })).toBe("recording");
    expect(during.segmentCount).toBeGreaterThan(live.segmentCount + 2);
    // A job that comes back to the worker still recording it continues there without a new period;
    // only a take-over by another worker starts one.
    if (during.periods > 1) expect(holderOf(during)).not.toBe(holder);
    const stopSentAtMs = Date.now();
    expect((await api.api("POST", `/v1/recordings/${id}/stop`)).status).toBe(202);
    const rec = await api.waitFor(id, (x) => TERMINAL.includes(x.status), 90_000);
    expect(rec.status, JSON.stringify(rec.error)).toBe("completed");
    // Carried on: nothing missing; taken over: at most the time until the test saw it going on again.
    await checkFile(id, rec, "redis-restart.mp4", { requestedAtMs: t0, stopSentAtMs, maxMissingS: rec.periods > 1 ? (Date.now() - killedAt) / 1000 : 0.5 });
  });
});

describe("job reconciler", () => {
  test("Redis loses its data during a recording: the API queues the recording again and it goes on to complete", async () => {
    const t0 = Date.now();
    const { id } = (await api.api("POST", "/v1/recordings", { url: page.url, video: VIDEO, maxDurationSeconds: 300 })).json();
    const live = await api.waitFor(id, (x) => x.segmentCount >= 3 || TERMINAL.includes(x.status), 60_000);
    expect(live.status).toBe("recording");
    const r = new Redis(redis.url);
    await r.flushall(); // as a Redis without persistence that restarted, or an empty replica promoted
    await r.quit();
    const lostAt = Date.now();
    const during = await api.waitFor(id, (x) => {
      if (TERMINAL.includes(x.status)) return true;
      const lastPeriod = Date.parse(x.events.filter((e: any) => e.type === "period_started").at(-1).at);
      return x.events.some((e: any) => e.type === "requeued") && x.segmentCount >= live.segmentCount + 4 && Date.now() - lastPeriod > 4000;
    }, 60_000);
    expect(during.status, JSON.stringify({ error: during.error, events: during.events.slice(-8) })).toBe("recording");
    const requeued = during.events.find((e: any) => e.type === "requeued");
    expect(requeued.data.jobState).toBe("missing");
    // Two passes of cluster.reconcileIntervalMs (2 s here) find the job gone, then it is queued again.
    expect(Date.parse(requeued.at) - lostAt).toBeLessThan(8000);
    expect((await api.api("GET", "/metrics")).body.toString()).toMatch(/meetrec_jobs_requeued_total\{job_state="missing"\} 1/);
    const duringSeenAt = Date.now();
    const stopSentAtMs = Date.now();
    expect((await api.api("POST", `/v1/recordings/${id}/stop`)).status).toBe(202);
    const rec = await api.waitFor(id, (x) => TERMINAL.includes(x.status), 90_000);
    expect(rec.status, JSON.stringify(rec.error)).toBe("completed");
    // Whether the holder carried on (same period) or another worker took over (one more period),
    // the file shows the page from start-up to the stop; a take-over's gap is bounded by the
    // time from the loss to the test seeing the recording going on (4 s past its last period).
    await checkFile(id, rec, "redis-lost.mp4", { requestedAtMs: t0, stopSentAtMs, maxMissingS: rec.periods > 1 ? (duringSeenAt - lostAt) / 1000 - 4 + 2 : 0.5 });
  });
});

describe("Redis down on the API's request path", () => {
  test("the API still takes a recording and answers /readyz at once; the recording starts when Redis is back", async () => {
    await redis.kill();
    let id: string;
    const requestedAt = Date.now();
    try {
      const t = Date.now();
      const res = await api.api("POST", "/v1/recordings", { url: page.url, video: VIDEO, maxDurationSeconds: 300 });
      expect(res.status, res.body.toString()).toBe(201);
      expect(Date.now() - t).toBeLessThan(8000); // bounded: 3 s for Redis, not "until it is back"
      id = res.json().id;
      expect(res.json().status).toBe("queued");
      const ready = await api.api("GET", "/readyz");
      expect(ready.status).toBe(503);
      expect(ready.json().problem).toBe("redis_unreachable");
    } finally {
      await redis.start();
    }
    const live = await api.waitFor(id, (x) => x.segmentCount >= 2 || TERMINAL.includes(x.status), 60_000);
    expect(live.status).toBe("recording");
    expect((await api.api("GET", "/readyz")).status).toBe(200);
    const stopSentAtMs = Date.now();
    expect((await api.api("POST", `/v1/recordings/${id}/stop`)).status).toBe(202);
    const rec = await api.waitFor(id, (x) => TERMINAL.includes(x.status), 90_000);
    expect(rec.status, JSON.stringify(rec.error)).toBe("completed");
    expect(rec.periods).toBe(1);
    await checkFile(id, rec, "redis-down.mp4", { requestedAtMs: requestedAt, stopSentAtMs, maxMissingS: 0.5 });
  });
});

describe("meetrec recover (cluster)", () => {
  test("every worker gone and Redis emptied: recover finalizes the recording from the bucket, and a manifest the store does not know", async () => {
    const t0 = Date.now();
    const { id } = (await api.api("POST", "/v1/recordings", { url: page.url, video: VIDEO, maxDurationSeconds: 300 })).json();
    const live = await api.waitFor(id, (x) => x.segmentCount >= 4 || TERMINAL.includes(x.status), 60_000);
    expect(live.status).toBe("recording");
    const killedAt = Date.now();
    expectCaptureProcesses(id);
    for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) await killMachine(w);
    expect(await recordingProcessesGone(id), "capture processes of the killed workers").toEqual([]);
    const r = new Redis(redis.url);
    await r.flushall();
    await r.quit();
    // A recording whose database row is lost: a copy of this one's bucket objects under another id.
    const orphan = "0c0c0c0c-0000-4000-8000-000000000000";
    const s3c = new S3Client({ region: "us-east-1", endpoint: (config.segments as any).s3.endpoint, forcePathStyle: true, credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" } });
    const listed = await s3c.send(new ListObjectsV2Command({ Bucket: "media", Prefix: `recordings/${id}/` }));
    for (const o of listed.Contents ?? []) {
      await s3c.send(new CopyObjectCommand({ Bucket: "media", CopySource: `media/${o.Key}`, Key: o.Key!.replace(id, orphan) }));
    }
    const out = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, ["--import", "tsx", join(REPO_ROOT, "src/cli/main.ts"), "recover", "--json"], {
        cwd: REPO_ROOT, env: { ...process.env, MEETREC_CONFIG: join(api.dir, "meetrec.yaml"), MEETREC_DATA_DIR: join(api.dir, "recover-data") },
      });
      let stdout = "", stderr = "";
      child.stdout.on("data", (d) => (stdout += d));
      child.stderr.on("data", (d) => (stderr += d));
      child.on("exit", (code) => resolve({ code, stdout, stderr }));
    });
    expect(out.code, out.stderr).toBe(0);
    const recovered = JSON.parse(out.stdout).recovered;
    expect(recovered).toEqual(expect.arrayContaining([
      expect.objectContaining({ id, action: "finalized", status: "completed" }),
      expect.objectContaining({ id: orphan, action: "orphan_finalized", file: `s3://media/recordings/${orphan}/recording.mp4` }),
    ]));
    const rec = (await api.api("GET", `/v1/recordings/${id}`)).json();
    // Everything up to the last segment closed before the kill (≤ 2 s lost) is in the file, live and sounding.
    await checkFile(id, rec, "recovered.mp4", { requestedAtMs: t0, stopSentAtMs: killedAt - 2000, maxMissingS: 0.5, minShownS: 7 });
    const orphanKeys = ((await s3c.send(new ListObjectsV2Command({ Bucket: "media", Prefix: `recordings/${orphan}/` }))).Contents ?? []).map((o) => o.Key);
    expect(orphanKeys).toEqual([`recordings/${orphan}/recording.mp4`]);
  });
});
