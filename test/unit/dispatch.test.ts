/**
 * Admission by capacity: the in-process dispatcher starts recordings while their cost fits the
 * CPU budget, lets a cheaper one pass one that does not fit, never waits forever on a cost above
 * the whole budget, and holds everything while memory or disk is short.
 */
import { tmpdir } from "node:os";
import { describe, expect, test } from "vitest";
import { Capacity, InProcessDispatcher } from "../../src/dispatch/index.js";
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

  test("the concurrency cap holds whatever the budget", async () => {
    const { d, started } = harness({ cpuBudget: 100 }, 2);
    for (const id of ["a", "b", "c"]) d.submit(id, "audio");
    expect(started).toEqual(["a", "b"]);
    await d.close();
  });
});
