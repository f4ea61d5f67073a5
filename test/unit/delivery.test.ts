import { describe, expect, test } from "vitest";
import { backoffMs, eventType } from "../../src/delivery/index.js";
import { spoolDir } from "../../src/delivery/index.js";

describe("delivery rules", () => {
  const retry = { initialDelayMs: 1000, maxDelayMs: 60_000, factor: 2 };
  test("capped exponential backoff with ±20 % jitter", () => {
    expect([1, 2, 3, 4, 10].map((n) => backoffMs(n, retry, () => 0.5))).toEqual([1000, 2000, 4000, 8000, 60_000]);
    expect(backoffMs(1, retry, () => 0)).toBe(800);
    expect(backoffMs(1, retry, () => 1)).toBe(1200);
  });
  test("webhook event types", () => {
    expect(eventType("recording")).toBe("recording.started");
    expect(eventType("completed")).toBe("recording.completed");
    expect(eventType("failed")).toBe("recording.failed");
    expect(eventType("aborted")).toBe("recording.failed");
    expect(eventType("finalizing")).toBe("recording.updated");
  });
  test("spool sub-directory from metadata must be a plain name", () => {
    const t = { path: "/spool", subdirFromMetadata: "tenant" };
    expect(spoolDir(t, { tenant: "school-7" })).toBe("/spool/school-7");
    expect(spoolDir({ path: "/spool" }, {})).toBe("/spool");
    for (const bad of ["../x", "a/b", "", ".hidden", 7, undefined]) expect(() => spoolDir(t, { tenant: bad })).toThrow(/metadata\.tenant/);
  });
});
