import { mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawn, spawnSync } from "node:child_process";
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

  test("a process still running on a left-over profile (a template build no registry knew) is killed before the directory goes", async () => {
    const dir = mkdtempSync(join(tmpdir(), "meetrec-orphans-"));
    const gone = spawnSync("true").pid!;
    const profile = join(dir, `meetrec-profile-firefox-template-${gone}-0`);
    mkdirSync(profile);
    const other = spawn("sh", ["-c", "sleep 600", "sh", `${profile}-not`], { stdio: "ignore" });
    // stands in for a browser started with `--profile <dir>`: its command line names the directory
    const holder = spawn("sh", ["-c", "sleep 600", "sh", profile], { stdio: "ignore" });
    try {
      const exited = new Promise((r) => holder.once("exit", (_c, sig) => r(sig)));
      expect(removeLeftoverProfiles(dir)).toEqual([`meetrec-profile-firefox-template-${gone}-0`]);
      expect(await exited).toBe("SIGKILL");
      expect(other.exitCode === null && other.signalCode === null, "a process naming another path lives").toBe(true);
    } finally {
      for (const p of [other, holder]) p.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
