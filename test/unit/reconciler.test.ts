/**
 * The job reconciler against a real Redis (BullMQ queue) and a real store: a recording whose
 * job is missing or failed is queued again after two passes; one whose job is alive, or that
 * has ended, is left alone.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Queue, Worker } from "bullmq";
import { afterAll, beforeAll, expect, test } from "vitest";
import { JobReconciler, MAX_FAILED_REQUEUES, type RecordJobData } from "../../src/dispatch/index.js";
import { addRecordJob, redisConnection } from "../../src/dispatch/queue.js";
import { RecordingStore } from "../../src/store/index.js";
import { createLogger } from "../../src/util/log.js";
import { startRedis, type RedisServer } from "../../dev/services.js";

const options = { url: "https://m.example.com/", join: [], mode: "video" as const, browser: "chromium" as const, video: { width: 640, height: 360, fps: 10, bitrateKbps: 500 }, maxDurationSeconds: 60 };

let redis: RedisServer;
let dir: string;
let store: RecordingStore;
let queue: Queue<RecordJobData>;
const connection = () => redisConnection(redis.url);

beforeAll(async () => {
  redis = await startRedis();
  dir = mkdtempSync(join(tmpdir(), "meetrec-reconciler-"));
  store = await RecordingStore.openSqlite(join(dir, "meetrec.db"));
  queue = new Queue<RecordJobData>("rq", { connection: connection() });
}, 60_000);
afterAll(async () => {
  await queue?.close();
  await store?.close();
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test("missing and failed jobs are queued again after two passes; live jobs and ended recordings are left alone", async () => {
  const log = createLogger("silent");
  const requeued: string[] = [];
  const rc = new JobReconciler(queue, store, log, (r) => requeued.push(`${r.id}:${r.jobState}`));
  const add = (id: string) => addRecordJob(queue, id, "video");

  await store.create({ id: "lost", backend: "default", options, metadata: {} });
  await store.transition("lost", "starting", { reason: "dispatched" });
  await store.transition("lost", "recording");
  await store.create({ id: "waiting", backend: "default", options, metadata: {} });
  await store.create({ id: "late", backend: "default", options, metadata: {} }); // its job is added between the passes
  await store.create({ id: "ended", backend: "default", options, metadata: {} });
  await store.transition("ended", "aborted", { reason: "stopped", message: "x", endReason: "stopped" });
  // A run that threw: the job ends failed while the recording is still `queued`.
  await store.create({ id: "crashed", backend: "default", options, metadata: {} });
  await add("crashed");
  const w = new Worker<RecordJobData>("rq", async (job) => {
    if (job.data.id === "crashed") throw new Error("PostgreSQL unreachable");
    await new Promise((r) => setTimeout(r, 60_000));
  }, { connection: connection(), autorun: false });
  void w.run();
  for (let i = 0; i < 50 && (await (await queue.getJob("crashed"))!.getState()) !== "failed"; i++) await new Promise((r) => setTimeout(r, 100));
  await w.close(true);
  await add("waiting");

  expect(await rc.sweep()).toEqual([]); // first sighting only
  await add("late");
  const second = await rc.sweep();
  expect(second.map((r) => r.id).sort()).toEqual(["crashed", "lost"]);
  expect(second.find((r) => r.id === "lost")).toEqual({ id: "lost", status: "recording", jobState: "missing" });
  expect(second.find((r) => r.id === "crashed")?.jobState).toBe("failed");
  expect(requeued.sort()).toEqual(["crashed:failed", "lost:missing"]);
  for (const id of ["lost", "crashed", "waiting", "late"]) expect(["waiting", "active"], id).toContain(await (await queue.getJob(id))?.getState());
  expect(await queue.getJob("ended")).toBeUndefined();
  expect((await store.get("lost"))?.status).toBe("recording");
  expect((await store.events("lost")).map((e) => e.type)).toContain("requeued");
  // Now every unfinished recording has a live job: nothing more to do, however often it runs.
  expect(await rc.sweep()).toEqual([]);
  expect(await rc.sweep()).toEqual([]);
});

test(`a job that keeps failing is queued again ${MAX_FAILED_REQUEUES} times, then given up with its reason on the timeline`, async () => {
  const q2 = new Queue<RecordJobData>("rq2", { connection: connection() });
  const rc = new JobReconciler(q2, store, createLogger("silent"));
  // The first test's recordings are in the same store with no job on this queue: look at "doomed" only.
  const sweep = async () => (await rc.sweep()).map((r) => r.id).filter((id) => id === "doomed");
  await store.create({ id: "doomed", backend: "default", options, metadata: {} });
  await addRecordJob(q2, "doomed", "video");
  const w = new Worker<RecordJobData>("rq2", async () => { throw new Error("cannot read the manifest"); }, { connection: connection() });
  const failed = async () => {
    for (let i = 0; i < 100 && (await (await q2.getJob("doomed"))?.getState()) !== "failed"; i++) await new Promise((r) => setTimeout(r, 50));
  };
  try {
    for (let i = 0; i < MAX_FAILED_REQUEUES; i++) {
      await failed();
      await sweep();
      expect(await sweep()).toEqual(["doomed"]);
    }
    await failed();
    await sweep();
    expect(await sweep()).toEqual([]);
    expect(await sweep()).toEqual([]);
    const events = await store.events("doomed");
    expect(events.filter((e) => e.type === "requeued")).toHaveLength(MAX_FAILED_REQUEUES);
    expect(events.find((e) => e.type === "requeued")?.data).toMatchObject({ jobState: "failed", failedReason: "cannot read the manifest" });
    expect(events.at(-1)).toMatchObject({ type: "requeue_gave_up", data: { failedReason: "cannot read the manifest", requeues: MAX_FAILED_REQUEUES } });
  } finally {
    await w.close();
    await q2.close();
  }
});
