/**
 * The store on both engines it runs on: SQLite (in memory) and a real PostgreSQL server from
 * Debian — the same code, the same migrations, the same answers.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { RecordingStore, TIMELINE_EVENT_TYPES, type RecordingStatus } from "../../src/store/index.js";
import { MeetrecError } from "../../src/util/errors.js";
import { startPostgres, type PostgresServer } from "../../dev/services.js";

const options = { url: "https://m.example.com/", join: [], mode: "video" as const, browser: "chromium" as const, video: { width: 640, height: 360, fps: 10, bitrateKbps: 500 }, maxDurationSeconds: 60 };

let pg: PostgresServer;
let dir: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "meetrec-store-"));
  pg = await startPostgres();
}, 60_000);
afterAll(async () => {
  await pg?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const engines: [string, () => Promise<RecordingStore>][] = [
  ["sqlite", () => RecordingStore.openSqlite(join(dir, "meetrec.db"))],
  ["postgres", () => RecordingStore.openPostgres(pg.url)],
];

describe.each(engines)("store on %s", (engine, open) => {
  const id = (n: string) => `${engine}-${n}`;

  test("every transition is stored with its event; terminal states carry reasons", async () => {
    const store = await open();
    const r1 = id("r1");
    const rec = await store.create({ id: r1, backend: "b", options, metadata: { room: "x" } });
    expect(rec.status).toBe("queued");
    await store.transition(r1, "starting", { reason: "dispatched" });
    await store.transition(r1, "recording");
    await store.progress(r1, { capturedMs: 4000, segmentCount: 2, bytes: 1234, periodCount: 1 });
    await store.addEvent(r1, { type: "period_started", message: "Period 1 started (start)", data: { period: 1, reason: "start" } });
    await store.transition(r1, "stopping");
    await store.transition(r1, "finalizing");
    const done = await store.transition(r1, "completed", { endReason: "limit_reached", file: { name: "recording.mp4", bytes: 10, durationSeconds: 4, streams: [] } });
    expect(done).toMatchObject({ status: "completed", endReason: "limit_reached", capturedMs: 4000, segmentCount: 2, bytes: 1234 });
    expect(done.startedAt).not.toBeNull();
    expect(done.endedAt).not.toBeNull();
    const events = await store.events(r1);
    expect(events.map((e) => e.status ?? e.type)).toEqual(["queued", "starting", "recording", "period_started", "stopping", "finalizing", "completed"]);
    expect(events[3].data).toEqual({ period: 1, reason: "start" });
    expect((await store.get(r1))!.metadata).toEqual({ room: "x" });
    await store.close();
  });

  test("illegal transitions are refused and change nothing", async () => {
    const store = await open();
    const r2 = id("r2");
    await store.create({ id: r2, backend: "b", options, metadata: {} });
    await expect(store.transition(r2, "completed")).rejects.toMatchObject({ code: "conflict" });
    await store.transition(r2, "aborted");
    await expect(store.transition(r2, "starting")).rejects.toBeInstanceOf(MeetrecError);
    await expect(store.transition("nope", "starting")).rejects.toMatchObject({ code: "not_found" });
    expect((await store.events(r2)).length).toBe(2);
    expect((await store.countByStatus()).aborted).toBeGreaterThanOrEqual(1);
    await store.close();
  });

  /**
   * Fires `to` on `r` from every store at once (each store three times), and checks that exactly one
   * call wins and every other one is refused with a typed `conflict`.
   */
  async function raceOne(stores: RecordingStore[], r: string, to: RecordingStatus): Promise<void> {
    const results = await Promise.allSettled([...stores, ...stores, ...stores].map((s) => s.transition(r, to)));
    const won = results.filter((x) => x.status === "fulfilled");
    const lost = results.flatMap((x) => (x.status === "rejected" ? [x.reason as unknown] : []));
    expect(won, `${to}: ${JSON.stringify(lost.map((e) => String(e)))}`).toHaveLength(1);
    expect(lost).toHaveLength(results.length - 1);
    for (const e of lost) {
      expect(e).toBeInstanceOf(MeetrecError);
      expect(e).toMatchObject({ code: "conflict" });
    }
  }

  test("concurrent transitions from one status: exactly one wins", async () => {
    const a = await open();
    const b = await open(); // another process on the same database
    const r3 = id("r3");
    await a.create({ id: r3, backend: "b", options, metadata: {} });
    await raceOne([a, b], r3, "starting");
    expect((await b.get(r3))!.status).toBe("starting");
    expect((await a.events(r3)).filter((e) => e.status).map((e) => e.status)).toEqual(["queued", "starting"]);
    await a.close();
    await b.close();
  });

  test("concurrent chain queued → starting → aborted: exactly one wins each step", async () => {
    const a = await open();
    const b = await open();
    const r3c = id("r3c");
    await a.create({ id: r3c, backend: "b", options, metadata: {} });
    await raceOne([a, b], r3c, "starting");
    await raceOne([b, a], r3c, "aborted");
    expect((await a.get(r3c))!.status).toBe("aborted");
    expect((await b.events(r3c)).filter((e) => e.status).map((e) => e.status)).toEqual(["queued", "starting", "aborted"]);
    await a.close();
    await b.close();
  });

  test("cluster leases: a claim fences the previous holder; stop requests wait for whoever holds it", async () => {
    const store = await open();
    const r4 = id("r4");
    await store.create({ id: r4, backend: "b", options, metadata: {} });
    const e1 = await store.claim(r4, "worker-a");
    expect(await store.holds(r4, "worker-a", e1)).toBe(true);
    const e2 = await store.claim(r4, "worker-b");
    expect(e2).toBe(e1 + 1);
    expect(await store.holds(r4, "worker-a", e1)).toBe(false);
    expect(await store.holds(r4, "worker-b", e2)).toBe(true);
    await store.release(r4, "worker-a", e1); // not the holder: no effect
    expect(await store.holds(r4, "worker-b", e2)).toBe(true);
    expect(await store.stopRequested(r4)).toBeNull();
    await store.requestStop(r4, "stopped");
    await store.requestStop(r4, "deleted");
    expect(await store.stopRequested(r4)).toBe("stopped");
    await store.release(r4, "worker-b", e2);
    expect((await store.holders()).find((h) => h.id === r4)?.worker).toBeNull();
    await store.close();
  });

  test("Talk randoms: accepted once per backend within the window, shared by every store on the database, purged after it", async () => {
    const a = await open();
    const b = await open(); // another API process on the same database
    const random = id("r".repeat(56));
    const windowMs = 900_000;
    const t0 = new Date("2026-01-01T10:00:00.000Z");
    const at = (ms: number) => new Date(t0.getTime() + ms);
    expect(await a.rememberTalkRandom("cloud", random, windowMs, t0)).toBe(true);
    expect(await a.rememberTalkRandom("cloud", random, windowMs, at(1000))).toBe(false);
    expect(await b.rememberTalkRandom("cloud", random, windowMs, at(windowMs - 1))).toBe(false); // still inside the window
    expect(await b.rememberTalkRandom("other", random, windowMs, at(2000))).toBe(true); // keyed per backend
    // Concurrent: exactly one of many processes wins the same fresh random.
    const fresh = id("c".repeat(56));
    const wins = await Promise.all([a, b, a, b].map((s) => s.rememberTalkRandom("cloud", fresh, windowMs, at(3000))));
    expect(wins.filter(Boolean)).toHaveLength(1);
    // After the window it is purged and counts as new again (exactly once, again).
    expect(await b.rememberTalkRandom("cloud", random, windowMs, at(windowMs))).toBe(true);
    expect(await a.rememberTalkRandom("cloud", random, windowMs, at(windowMs + 1))).toBe(false);
    // Forgetting (a request answered 5xx) lets Talk's retry with the same random through.
    await a.forgetTalkRandom("cloud", fresh);
    expect(await b.rememberTalkRandom("cloud", fresh, windowMs, at(4000))).toBe(true);
    // Bounded: much later, every expired row is gone.
    expect(await a.rememberTalkRandom("cloud", id("late"), windowMs, at(10 * windowMs))).toBe(true);
    expect(await a.rememberTalkRandom("other", random, windowMs, at(10 * windowMs))).toBe(true);
    expect(await a.rememberTalkRandom("cloud", fresh, windowMs, at(10 * windowMs))).toBe(true);
    await a.close();
    await b.close();
  });
  test("speaker intervals: added by each capture run, read by start, gone with the recording; the file keeps its timeline", async () => {
    const store = await open();
    const r = id("spk");
    await store.create({ id: r, backend: "b", options, metadata: {} });
    const iv = (participantId: string, startMs: number, stopMs: number, stopType = "stoppedSpeaking") =>
      ({ participantId, participantName: `Name ${participantId}`, participantUserId: "", startMs, stopMs, startType: "speaking", stopType });
    await store.addSpeakerIntervals(r, []);
    await store.addSpeakerIntervals(r, [iv("b", 1_759_419_452_062, 1_759_419_452_945, "stillSpeaking")]);
    // a later run (after a hand-over) adds its own, some starting earlier than what is stored
    const many = Array.from({ length: 1200 }, (_, n) => iv(`p${n}`, 1_759_419_400_000 + n, 1_759_419_400_500 + n));
    await store.addSpeakerIntervals(r, [iv("a", 1_759_419_444_344, 1_759_419_445_964), ...many]);
    const got = await store.speakerIntervals(r);
    expect(got).toHaveLength(1202);
    expect(got.at(-2)).toEqual(iv("a", 1_759_419_444_344, 1_759_419_445_964));
    expect(got.at(-1)).toEqual(iv("b", 1_759_419_452_062, 1_759_419_452_945, "stillSpeaking"));
    expect(got.map((i) => i.startMs)).toEqual([...got.map((i) => i.startMs)].sort((x, y) => x - y));
    await store.transition(r, "starting");
    await store.transition(r, "recording");
    await store.transition(r, "stopping");
    await store.transition(r, "finalizing");
    const timeline = [{ fileMs: 0, wallMs: 1_759_419_440_000, durationMs: 30_000 }];
    expect((await store.transition(r, "completed", { file: { name: "recording.mp4", bytes: 1, durationSeconds: 30, streams: [], timeline } })).file?.timeline).toEqual(timeline);
    await store.delete(r);
    expect(await store.speakerIntervals(r)).toEqual([]);
    await store.close();
  });

  test("Talk containers: remembered per backend and Talk URL, replaced by the next one, shared by every store on the database", async () => {
    const a = await open();
    const b = await open();
    const url = `https://${engine}.example.com`;
    expect(await a.talkContainer("cloud", url)).toBeUndefined();
    await a.rememberTalkContainer("cloud", url, "mkv");
    expect(await b.talkContainer("cloud", url)).toBe("mkv");
    expect(await b.talkContainer("cloud", `${url}/other`)).toBeUndefined();
    expect(await b.talkContainer("other", url)).toBeUndefined();
    await b.rememberTalkContainer("cloud", url, "mp4");
    expect(await a.talkContainer("cloud", url)).toBe("mp4");
    await a.close();
    await b.close();
  });

  const file = { name: "recording.mp4", bytes: 10, durationSeconds: 4, streams: [] };
  /** A recording of this engine in `delivering`, with its file. */
  const delivering = async (store: RecordingStore, rid: string) => {
    await store.create({ id: rid, backend: "b", options, metadata: {} });
    for (const s of ["starting", "recording", "stopping", "finalizing"] as const) await store.transition(rid, s);
    await store.transition(rid, "delivering", { endReason: "stopped", file });
  };

  test("failed → delivering only for a recording whose delivery was given up and that has its file", async () => {
    const store = await open();
    const other = id("r5a");
    await delivering(store, other);
    await store.transition(other, "failed", { error: { code: "finalize_failed", message: "x" } });
    await expect(store.transition(other, "delivering")).rejects.toMatchObject({ code: "conflict" });
    const noFile = id("r5b");
    await store.create({ id: noFile, backend: "b", options, metadata: {} });
    await store.transition(noFile, "failed", { error: { code: "delivery_failed", message: "x" } });
    await expect(store.transition(noFile, "delivering")).rejects.toMatchObject({ code: "conflict" });
    expect((await store.events(noFile)).length).toBe(2);
    const gaveUp = id("r5c");
    await delivering(store, gaveUp);
    const failed = await store.transition(gaveUp, "failed", { reason: "delivery_failed", error: { code: "delivery_failed", message: "spool: EEXIST" } });
    expect(failed.endedAt).not.toBeNull();
    const again = await store.transition(gaveUp, "delivering", { reason: "redeliver" });
    expect(again).toMatchObject({ status: "delivering", error: null, endedAt: null, file });
    expect(await store.get(gaveUp)).toMatchObject({ status: "delivering", error: null, endedAt: null });
    await expect(store.transition(gaveUp, "queued")).rejects.toMatchObject({ code: "conflict" });
    await store.close();
  });

  test("give-up: the last retry is at the deadline, then the delivery fails with an event", async () => {
    const store = await open();
    const r = id("r6");
    await delivering(store, r);
    const d = await store.addDelivery({ recordingId: r, target: "spool", kind: "file" });
    const startedAt = new Date();
    const first = await store.recordAttempt(d.id, { ok: false, message: "EEXIST", retryInMs: 3600_000, giveUpAfterMs: 10_000 }, { startedAt });
    expect(first).toMatchObject({ status: "pending", attempts: 1, firstAttemptAt: startedAt.toISOString() });
    expect(Date.parse(first.nextAttemptAt)).toBe(startedAt.getTime() + 10_000); // not an hour later
    const given = await store.recordAttempt(d.id, { ok: false, message: "EEXIST again", retryInMs: 3600_000, giveUpAfterMs: 0 }, {
      givenUp: (x) => ({
        type: "delivery_given_up", message: `gave up after ${x.attempts}`,
        data: { target: x.target, kind: x.kind, attempts: x.attempts, firstAttemptAt: x.firstAttemptAt, lastError: "EEXIST again" },
      }),
    });
    expect(given).toMatchObject({ status: "failed", attempts: 2, lastError: "EEXIST again", firstAttemptAt: startedAt.toISOString() });
    expect((await store.events(r)).at(-1)).toMatchObject({ type: "delivery_given_up", message: "gave up after 2", data: { target: "spool" } });
    expect((await store.pendingDeliveries()).map((x) => x.id)).not.toContain(d.id);
    await store.close();
  });

  test("redeliver: atomic, one pending at a time, re-uses deliveries; a given-up recording goes back to delivering", async () => {
    const store = await open();
    const r = id("r7");
    await delivering(store, r);
    const spool = await store.addDelivery({ recordingId: r, target: "spool", kind: "file" });
    const hook = await store.addDelivery({ recordingId: r, target: "webhook:0", kind: "notify", payload: { type: "recording.updated" } });
    await store.recordAttempt(hook.id, { ok: true, message: "HTTP 200" });
    await store.recordAttempt(spool.id, { ok: false, message: "EEXIST", retryInMs: 1000, giveUpAfterMs: 0 });
    await store.transition(r, "failed", { reason: "delivery_failed", error: { code: "delivery_failed", message: "spool" } });
    const told: string[] = [];
    store.onTransition((rec, from) => { if (rec.id === r) told.push(`${from}→${rec.status}`); });

    expect(await store.redeliver(r, ["spool", "s3"])).toBe(2); // the given-up spool delivery, and a new one for s3
    expect(told).toEqual(["failed→delivering"]);
    expect(await store.get(r)).toMatchObject({ status: "delivering", error: null });
    const rows = await store.deliveries(r);
    const of = (target: string) => rows.find((x) => x.target === target)!;
    const summary = async () => (await store.deliveries(r)).map((x) => `${x.target}:${x.status}:${x.redeliverAt ? "marked" : "-"}`).sort();
    expect(await summary()).toEqual(["s3:pending:marked", "spool:pending:marked", "webhook:0:succeeded:-"]);
    expect([of("spool").firstAttemptAt, of("s3").firstAttemptAt]).toEqual([null, null]); // the give-up clock starts again
    const events = await store.events(r);
    expect(events.slice(-2).map((e) => e.type === "status" ? `status:${e.status}` : e.type)).toEqual(["status:delivering", "redeliver_requested"]);

    await expect(store.redeliver(r, ["spool", "s3"])).rejects.toMatchObject({ code: "conflict", message: expect.stringMatching(/already pending/) });
    expect(await store.deliveries(r)).toEqual(rows);
    expect(await store.events(r)).toEqual(events);

    // An attempt that began before the redelivery (it may have read stale metadata) does not settle it; one that began after does.
    const before = new Date(Date.now() - 60_000);
    const stale = await store.recordAttempt(of("spool").id, { ok: true, message: "written" }, { startedAt: before });
    expect(stale).toMatchObject({ status: "pending", redeliverAt: of("spool").redeliverAt, nextAttemptAt: of("spool").redeliverAt });
    await store.recordAttempt(of("spool").id, { ok: true, message: "written" }, { startedAt: new Date(Date.now() + 1) });
    await expect(store.redeliver(r, ["spool", "s3"])).rejects.toMatchObject({ code: "conflict" }); // s3 still waits
    await store.recordAttempt(of("s3").id, { ok: false, message: "no bucket", retryInMs: 1000 }, { startedAt: new Date(Date.now() + 1) });
    expect(await summary()).toEqual(["s3:pending:-", "spool:succeeded:-", "webhook:0:succeeded:-"]);

    // Attempted: the next redelivery is accepted, re-pends the succeeded file delivery, adds no row.
    expect(await store.redeliver(r, ["spool", "s3"])).toBe(2);
    expect(await summary()).toEqual(["s3:pending:marked", "spool:pending:marked", "webhook:0:succeeded:-"]);
    expect(await store.deliveries(r)).toHaveLength(3);
    await expect(store.redeliver(id("none"), [])).rejects.toMatchObject({ code: "not_found" });
    await store.close();
  });

  test("concurrent redelivers: exactly one is accepted", async () => {
    const a = await open();
    const b = await open();
    const r = id("r8");
    await delivering(a, r);
    await a.addDelivery({ recordingId: r, target: "spool", kind: "file" });
    const results = await Promise.allSettled([a.redeliver(r, ["spool"]), b.redeliver(r, ["spool"])]);
    expect(results.filter((x) => x.status === "fulfilled")).toHaveLength(1);
    expect((await a.events(r)).filter((e) => e.type === "redeliver_requested")).toHaveLength(1);
    await a.close();
    await b.close();
  });

  test("attempts: the last n of each delivery", async () => {
    const store = await open();
    const r = id("r9");
    await delivering(store, r);
    const d1 = await store.addDelivery({ recordingId: r, target: "spool", kind: "file" });
    const d2 = await store.addDelivery({ recordingId: r, target: "webhook:0", kind: "notify" });
    for (let i = 1; i <= 4; i++) {
      await store.recordAttempt(d1.id, { ok: false, message: `spool ${i}`, retryInMs: 1000 });
      if (i <= 1) await store.recordAttempt(d2.id, { ok: false, message: `hook ${i}`, retryInMs: 1000 });
    }
    expect((await store.deliveryAttempts(r)).map((x) => x.message)).toEqual(["spool 1", "hook 1", "spool 2", "spool 3", "spool 4"]);
    expect((await store.deliveryAttempts(r, 2)).map((x) => `${x.message}#${x.attempt}`)).toEqual(["hook 1#1", "spool 3#3", "spool 4#4"]);
    expect((await store.deliveries(r)).map((x) => `${x.target}:${x.attempts}`).sort()).toEqual(["spool:4", "webhook:0:1"]);
    await store.close();
  });

  test("addEvent: data stored as the catalogue types it; a type without data stores none", async () => {
    const store = await open();
    const r = id("r11");
    await store.create({ id: r, backend: "b", options, metadata: {} });
    await store.addEvent(r, { type: "interrupted", message: "stopped" });
    await store.addEvent(r, { type: "handed_over", message: "left", data: {} });
    await store.addEvent(r, { type: "retention_purged", message: "purged", data: { file: undefined, bucket: null } });
    expect((await store.events(r)).slice(1).map((e) => [e.type, e.message, e.data])).toEqual([
      ["interrupted", "stopped", null], ["handed_over", "left", {}], ["retention_purged", "purged", { bucket: null }],
    ]);
    // What the catalogue refuses, checked by tsc (never run).
    const refused = () => [
      // @ts-expect-error a type the catalogue does not list
      store.addEvent(r, { type: "warning", message: "x" }),
      // @ts-expect-error a data key period_started does not have
      store.addEvent(r, { type: "period_started", message: "x", data: { period: 1, reason: "start", extra: 1 } }),
      // @ts-expect-error a data key missing
      store.addEvent(r, { type: "period_started", message: "x", data: { period: 1 } }),
      // @ts-expect-error data on a type that has none
      store.addEvent(r, { type: "no_audio", message: "x", data: {} }),
      // @ts-expect-error status events are written by transitions only
      store.addEvent(r, { type: "status", message: "x", data: { pids: {} } }),
    ];
    void refused;
    await store.close();
  });

  test("patchMetadata: a merge patch, checked under the row lock; a refusal changes nothing", async () => {
    const store = await open();
    const r = id("r10");
    await store.create({ id: r, backend: "b", options, metadata: { tenant: "a", room: "x" } });
    await expect(store.patchMetadata(r, { tenant: "../x" }, (_rec, next) => {
      if (next.tenant === "../x") throw new MeetrecError("validation_failed", "bad tenant");
    })).rejects.toMatchObject({ code: "validation_failed" });
    expect((await store.get(r))!.metadata).toEqual({ tenant: "a", room: "x" });
    expect((await store.events(r)).map((e) => e.type)).toEqual(["status"]);
    let seen: unknown;
    const rec = await store.patchMetadata(r, { tenant: "b", room: null, extra: 1 }, (cur, next) => { seen = [cur.metadata, next]; });
    expect(seen).toEqual([{ tenant: "a", room: "x" }, { tenant: "b", extra: 1 }]);
    expect(rec.metadata).toEqual({ tenant: "b", extra: 1 });
    expect((await store.get(r))!.metadata).toEqual({ tenant: "b", extra: 1 });
    expect((await store.events(r)).at(-1)).toMatchObject({ type: "metadata_changed", data: { set: ["tenant", "extra"], removed: ["room"] } });
    await expect(store.patchMetadata(id("none"), { a: 1 }, () => undefined)).rejects.toMatchObject({ code: "not_found" });
    await store.close();
  });
});

test("the timeline catalogue lists each event type once", () => {
  expect(new Set(TIMELINE_EVENT_TYPES).size).toBe(TIMELINE_EVENT_TYPES.length);
  expect(TIMELINE_EVENT_TYPES).toContain("status");
});
