import { describe, expect, test } from "vitest";
import { RecordingStore } from "../../src/store/index.js";
import { MeetrecError } from "../../src/util/errors.js";

const options = { url: "https://m.example.com/", join: [], mode: "video" as const, browser: "chromium" as const, video: { width: 640, height: 360, fps: 10, bitrateKbps: 500 }, maxDurationSeconds: 60 };

describe("store state machine", () => {
  test("every transition is stored with its event; terminal states carry reasons", async () => {
    const store = await RecordingStore.openSqlite(":memory:");
    const rec = await store.create({ id: "r1", backend: "b", options, metadata: { room: "x" } });
    expect(rec.status).toBe("queued");
    await store.transition("r1", "starting", { reason: "dispatched" });
    await store.transition("r1", "recording");
    await store.progress("r1", { capturedMs: 4000, segmentCount: 2, bytes: 1234, periodCount: 1 });
    await store.addEvent("r1", "period_started", "Period 1 started", { period: 1 });
    await store.transition("r1", "stopping");
    await store.transition("r1", "finalizing");
    const done = await store.transition("r1", "completed", { endReason: "limit_reached", file: { name: "recording.mp4", bytes: 10, durationSeconds: 4, streams: [] } });
    expect(done).toMatchObject({ status: "completed", endReason: "limit_reached", capturedMs: 4000, segmentCount: 2 });
    expect(done.startedAt).not.toBeNull();
    expect(done.endedAt).not.toBeNull();
    const events = await store.events("r1");
    expect(events.map((e) => e.status ?? e.type)).toEqual(["queued", "starting", "recording", "period_started", "stopping", "finalizing", "completed"]);
    expect((await store.get("r1"))!.metadata).toEqual({ room: "x" });
    await store.close();
  });

  test("illegal transitions are refused and change nothing", async () => {
    const store = await RecordingStore.openSqlite(":memory:");
    await store.create({ id: "r2", backend: "b", options, metadata: {} });
    await expect(store.transition("r2", "completed")).rejects.toMatchObject({ code: "conflict" });
    await store.transition("r2", "aborted");
    await expect(store.transition("r2", "starting")).rejects.toBeInstanceOf(MeetrecError);
    await expect(store.transition("nope", "starting")).rejects.toMatchObject({ code: "not_found" });
    expect((await store.events("r2")).length).toBe(2);
    expect(await store.countByStatus()).toEqual({ aborted: 1 });
    await store.close();
  });
});
