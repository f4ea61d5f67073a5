import { mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { describe, expect, test } from "vitest";
import { removeLeftoverProfiles } from "../../src/capture/index.js";

describe("browser profiles left by a killed meetrec", () => {
  test("a profile whose meetrec pid is gone is removed; a running meetrec's and other names stay", () => {
    const dir = mkdtempSync(join(tmpdir(), "meetrec-orphans-"));
    try {
      // A pid that ran and has exited.
      const gone = spawnSync("true").pid!;
      const names = [
        `meetrec-profile-6f1c2a9e-1b2c-4d5e-8f90-123456789abc-${gone}-0`,
        `meetrec-profile-warm-0a1b2c3d-${gone}-1`,
        `meetrec-profile-6f1c2a9e-1b2c-4d5e-8f90-123456789abc-${process.pid}-0`,
        "meetrec-profile-notes",
        "meetrec-test-abc",
      ];
      for (const n of names) mkdirSync(join(dir, n, "Default"), { recursive: true });
      expect(removeLeftoverProfiles(dir).sort()).toEqual(names.slice(0, 2).sort());
      expect(readdirSync(dir).sort()).toEqual(names.slice(2).sort());
      expect(removeLeftoverProfiles(join(dir, "missing"))).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
