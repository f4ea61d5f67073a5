/**
 * Admission by capacity: the in-process dispatcher starts recordings while their cost fits the
 * CPU budget, lets a cheaper one pass one that does not fit, never waits forever on a cost above
 * the whole budget, and holds everything while memory or disk is short or a running recording
 * is falling behind.
 */
import { tmpdir } from "node:os";
import { describe, expect, test } from "vitest";
import { Capacity, InProcessDispatcher, MIN_VIDEO_COST_FACTOR, recordingCost } from "../../src/dispatch/index.js";
import { COST_LEARN_WEIGHT } from "../../src/dispatch/capacity.js";
import { createLogger } from "../../src/util/log.js";

function harness(settings: Partial<ConstructorParameters<typeof Capacity>[0]> = {}, concurrency = 10) {
  const capacity = new Capacity({ cpuBudget: 2, cost: { video: 1, audio: 0.35 }, minFreeMemoryBytes: 0, minFreeDiskBytes: 0, ...settings }, tmpdir());
  const started: string[] = [];
  const finish = new Map<string, () => void>();
  const d = new InProcessDispatcher(concurrency, (id) => {
    started.push(id);
    return { stop: () => finish.get(id)?.(), done: new Promise<void>((r) => finish.set(id, r)) };
  }, createLogger("silent"), capacity);
  const end = async (id: string) => { finish.get(id)!(); await new Promise((r) => setTimeout(r, 10)); };
  return { d, capacity, started, end };
}

describe("admission by capacity", () => {
  test("video recordings fill the CPU budget; an audio one passes a waiting video one; ending frees the cost", async () => {
    const { d, capacity, started, end } = harness();
    d.submit("v1", "video");
    d.submit("v2", "video");
    d.submit("v3", "video");
    d.submit("a1", "audio");
    expect(started).toEqual(["v1", "v2"]);
    expect(capacity.snapshot()).toMatchObject({ cpuUsed: 2, cpuLeft: 0, canAccept: { video: false, audio: false }, refusal: "cpu" });
    expect(d.hasCapacity("video")).toBe(false);
    await end("v1");
    // 1 core free: v3 (1.0) starts; then 0 left, a1 waits.
    expect(started).toEqual(["v1", "v2", "v3"]);
    await end("v2");
    expect(started).toEqual(["v1", "v2", "v3", "a1"]);
    expect(capacity.snapshot().cpuUsed).toBeCloseTo(1.35);
    expect(capacity.snapshot().canAccept).toEqual({ video: false, audio: true });
    d.submit("a2", "audio");
    expect(started.at(-1)).toBe("a2");
    d.submit("v4", "video");
    expect(started).not.toContain("v4");
    expect(d.waiting).toBe(1);
    await d.close();
  });

  test("a recording costing more than the whole budget still starts when nothing runs", async () => {
    const { d, started } = harness({ cpuBudget: 0.5 });
    d.submit("big", "video");
    d.submit("big2", "video");
    expect(started).toEqual(["big"]);
    await d.close();
  });

  test("short of memory or disk, nothing starts; /readyz reasons say which", async () => {
    const mem = harness({ minFreeMemoryBytes: Number.MAX_SAFE_INTEGER });
    mem.d.submit("a", "audio");
    expect(mem.started).toEqual([]);
    expect(mem.capacity.snapshot().refusal).toBe("memory");
    await mem.d.close();
    const disk = harness({ minFreeDiskBytes: Number.MAX_SAFE_INTEGER });
    disk.d.submit("a", "audio");
    expect(disk.started).toEqual([]);
    expect(disk.capacity.snapshot().refusal).toBe("disk");
    expect(disk.d.hasCapacity("audio")).toBe(false);
    await disk.d.close();
  });

  test("costs learned from measured sessions replace the configured ones per kind and size; what runs is re-costed; release matches take", async () => {
    const { d, capacity, started } = harness({ cpuBudget: 2, cost: { video: 1, audio: 0.35 } });
    const small = { mode: "video" as const, video: { width: 640, height: 360, fps: 15 } };
    expect(capacity.snapshot()).toMatchObject({ cost: { video: 1, audio: 0.35 }, measured: {} });
    // a small recording measured at 0.8 cores: that size costs 0.8; the reference is not extrapolated from it
    capacity.learn(small, 0.8);
    expect(capacity.cost(small)).toBe(0.8);
    expect(capacity.snapshot()).toMatchObject({ cost: { video: 1 }, measured: { "video:640x360@15": 0.8 } });
    // the reference size measured: the first measurement as it is, the next by COST_LEARN_WEIGHT; nonsense ignored
    capacity.learn("video", 0.6);
    capacity.learn({ mode: "video", video: { width: 1280, height: 720, fps: 30 } }, 0.9);
    expect(capacity.cost("video")).toBeCloseTo(0.6 + COST_LEARN_WEIGHT * 0.3);
    capacity.learn("video", Number.NaN);
    capacity.learn("video", -1);
    expect(capacity.snapshot()).toMatchObject({ cost: { video: 0.69 }, measured: { "video:640x360@15": 0.8, "video:1280x720@30": 0.69 } });
    // 0.69 each: two 720p30 fit in 2 cores, the third waits
    for (const id of ["a", "b", "c"]) d.submit(id, "video");
    expect(started).toEqual(["a", "b"]);
    // running recordings are counted at today's cost: measured cheaper, the third fits now
    for (let i = 0; i < 10; i++) capacity.learn("video", 0.5);
    await new Promise((r) => setTimeout(r, 2100)); // the dispatcher looks again while anything waits
    expect(started).toEqual(["a", "b", "c"]);
    // release by an equal workload (the cluster hands back a re-read recording)
    const { capacity: c2 } = harness();
    c2.take({ mode: "video", video: { width: 640, height: 360, fps: 30 } });
    c2.release({ mode: "video", video: { width: 640, height: 360, fps: 30 } });
    expect(c2.snapshot().cpuUsed).toBe(0);
    await d.close();
  });

  test("a running recording falling behind (measured) holds everything new within the budget until it recovers", async () => {
    const { d, capacity, started } = harness({ cpuBudget: 8 });
    let behind = false;
    capacity.watchOverload(() => behind);
    d.submit("v1", "video");
    behind = true;
    d.submit("v2", "audio");
    expect(started).toEqual(["v1"]);
    expect(capacity.snapshot()).toMatchObject({ refusal: "overloaded", canAccept: { video: false, audio: false } });
    behind = false;
    await new Promise((r) => setTimeout(r, 2100)); // the dispatcher looks again while anything waits
    expect(started).toEqual(["v1", "v2"]);
    expect(capacity.snapshot().refusal).toBeUndefined();
    await d.close();
  });

  test("the concurrency cap holds whatever the budget", async () => {
    const { d, started } = harness({ cpuBudget: 100 }, 2);
    for (const id of ["a", "b", "c"]) d.submit(id, "audio");
    expect(started).toEqual(["a", "b"]);
    await d.close();
  });
});

describe("a recording's cost scales with its pixels × frame rate", () => {
  const cost = { video: 1, audio: 0.35 };
  const video = (width: number, height: number, fps: number) => ({ mode: "video" as const, video: { width, height, fps } });

  test("cost.video is the cost of 1280×720@30; others scale by width·height·fps, never below half of it; audio is flat", () => {
    expect(recordingCost(cost, video(1280, 720, 30))).toBe(1);
    expect(recordingCost(cost, "video")).toBe(1); // a bare kind: the reference recording
    expect(recordingCost(cost, video(1920, 1080, 30))).toBeCloseTo(2.25);
    expect(recordingCost(cost, video(1280, 720, 60))).toBeCloseTo(2);
    expect(recordingCost(cost, video(3840, 2160, 60))).toBeCloseTo(18);
    expect(recordingCost(cost, video(960, 540, 30))).toBeCloseTo(0.5625);
    expect(recordingCost(cost, video(640, 360, 15))).toBe(MIN_VIDEO_COST_FACTOR * 1); // 0.125 → the floor
    expect(recordingCost({ video: 2, audio: 0.35 }, video(160, 120, 1))).toBe(1); // the floor scales with cost.video
    expect(recordingCost(cost, { mode: "audio", video: { width: 3840, height: 2160, fps: 60 } })).toBe(0.35);
    expect(recordingCost(cost, "audio")).toBe(0.35);
  });

  test("admission books and frees each recording's own cost; /readyz canAccept stays about 720p30 video", async () => {
    const { d, capacity, started, end } = harness({ cpuBudget: 4 });
    d.submit("hd1", video(1920, 1080, 30)); // 2.25
    d.submit("hd2", video(1920, 1080, 30)); // 2.25: 4.5 > 4, waits
    d.submit("sd", video(1280, 720, 30)); // 1: passes it (3.25)
    expect(started).toEqual(["hd1", "sd"]);
    expect(capacity.snapshot()).toMatchObject({ cpuUsed: 3.25, cpuLeft: 0.75, canAccept: { video: false, audio: true }, refusal: "cpu" });
    d.submit("tiny", video(320, 180, 5)); // the floor, 0.5: fits in 0.75
    expect(started.at(-1)).toBe("tiny");
    expect(capacity.snapshot().cpuUsed).toBeCloseTo(3.75);
    await end("hd1"); // frees 2.25, not 1: hd2 fits now (1 + 0.5 + 2.25)
    expect(started.at(-1)).toBe("hd2");
    expect(capacity.snapshot().cpuUsed).toBeCloseTo(3.75);
    await end("hd2");
    await end("sd");
    await end("tiny");
    expect(capacity.snapshot()).toMatchObject({ cpuUsed: 0, canAccept: { video: true, audio: true } });
    await d.close();
  });

  test("a recording's stored options are a workload as they are", async () => {
    const { d, capacity, started } = harness({ cpuBudget: 8 });
    const options = { url: "https://m.example.com/", join: [], mode: "video" as const, browser: "chromium" as const, video: { width: 1920, height: 1080, fps: 30, bitrateKbps: 8000 }, maxDurationSeconds: 60 };
    d.submit("r", options);
    expect(started).toEqual(["r"]);
    expect(capacity.snapshot().cpuUsed).toBeCloseTo(2.25);
    await d.close();
  });
});
