/**
 * The store on both engines it runs on: SQLite (in memory) and a real PostgreSQL server from
 * Debian — the same code, the same migrations, the same answers.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { RecordingStore } from "../../src/store/index.js";
import { MeetrecError } from "../../src/util/errors.js";
import { startPostgres, type PostgresServer } from "../fixtures/services.js";

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
    await store.addEvent(r1, "period_started", "Period 1 started", { period: 1 });
    await store.transition(r1, "stopping");
    await store.transition(r1, "finalizing");
    const done = await store.transition(r1, "completed", { endReason: "limit_reached", file: { name: "recording.mp4", bytes: 10, durationSeconds: 4, streams: [] } });
    expect(done).toMatchObject({ status: "completed", endReason: "limit_reached", capturedMs: 4000, segmentCount: 2, bytes: 1234 });
    expect(done.startedAt).not.toBeNull();
    expect(done.endedAt).not.toBeNull();
    const events = await store.events(r1);
    expect(events.map((e) => e.status ?? e.type)).toEqual(["queued", "starting", "recording", "period_started", "stopping", "finalizing", "completed"]);
    expect(events[3].data).toEqual({ period: 1 });
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

  test("concurrent transitions from one status: exactly one wins", async () => {
    const a = await open();
    const b = await open();
    const r3 = id("r3");
    await a.create({ id: r3, backend: "b", options, metadata: {} });
    const results = await Promise.allSettled([a.transition(r3, "starting"), b.transition(r3, "starting"), a.transition(r3, "aborted"), b.transition(r3, "aborted")]);
    const won = results.filter((r) => r.status === "fulfilled");
    expect(won.length).toBeLessThanOrEqual(2); // queued → starting → aborted at most
    expect((await a.events(r3)).filter((e) => e.status).length).toBe(1 + won.length);
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
});
