import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawn, spawnSync } from "node:child_process";
import { describe, expect, test } from "vitest";
import { removeLeftoverProfiles } from "../../src/capture/index.js";
import { removeProfile } from "../../src/capture/orphans.js";

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

  test("a Chromium profile goes with its singleton socket's directory; a link elsewhere is not followed", () => {
    const tmp = mkdtempSync(join(tmpdir(), "meetrec-orphans-"));
    try {
      const socketDir = join(tmp, "org.chromium.Chromium.a1B2c3");
      mkdirSync(socketDir);
      const profile = join(tmp, "meetrec-profile-x-1-0");
      mkdirSync(profile);
      symlinkSync(join(socketDir, "SingletonSocket"), join(profile, "SingletonSocket"));
      removeProfile(profile, tmp);
      expect(existsSync(profile)).toBe(false);
      expect(existsSync(socketDir), "the socket's directory").toBe(false);
      // A link to anything else (another name, another directory) only goes with the profile.
      const keep = join(tmp, "keep");
      mkdirSync(join(keep, "org.chromium.Chromium.zz"), { recursive: true });
      for (const target of [join(keep, "SingletonSocket"), join(keep, "org.chromium.Chromium.zz", "SingletonSocket")]) {
        mkdirSync(profile);
        symlinkSync(target, join(profile, "SingletonSocket"));
        removeProfile(profile, tmp);
        expect(existsSync(profile)).toBe(false);
      }
      expect(existsSync(join(keep, "org.chromium.Chromium.zz"))).toBe(true);
      removeProfile(join(tmp, "missing"), tmp); // nothing there: no error
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
