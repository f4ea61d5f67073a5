/**
 * Messages that reach API clients (a recording's error.message, events, delivery attempts)
 * name no local path; the cause keeps it for the log.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { RecorderBrowser } from "../../src/capture/index.js";
import { probe } from "../../src/media/probe.js";
import { MeetrecError, publicErrorMessage, withoutPaths } from "../../src/util/errors.js";

const dir = mkdtempSync(join(tmpdir(), "meetrec-errors-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("messages without local paths", () => {
  test("a Node system error becomes code, description and syscall", async () => {
    const err = await readFile(join(dir, "secret-name", "x")).catch((e: unknown) => e);
    expect(publicErrorMessage(err)).toBe("ENOENT: no such file or directory (open)");
    expect(publicErrorMessage(new Error("plain"))).toBe("plain");
    expect(publicErrorMessage("text")).toBe("text");
  });

  test("withoutPaths keeps what is under a path as relative, longest path first", () => {
    expect(withoutPaths("/data/rec/x/p1/000001.m4s: No space left; /data/rec/x failed; /data/rec/xy", ["/data/rec/x/", "/data"])).toBe("p1/000001.m4s: No space left; … failed; rec/xy");
    expect(withoutPaths("nothing here", [undefined, "/", ""])).toBe("nothing here");
    expect(withoutPaths("open '/mnt/data/a' and '/data/a'", ["/data"])).toBe("open '/mnt/data/a' and 'a'");
  });

  test("browser_failed names the config key, not the executable or the profile", async () => {
    const exe = join(dir, "no-such-dir", "chromium");
    const err = await RecorderBrowser.launch({ kind: "chromium", executablePath: exe, display: ":99", width: 320, height: 240, profileDir: join(dir, "profile"), env: {}, proxyPort: 9 })
      .then(() => undefined, (e: unknown) => e) as MeetrecError;
    expect(err).toBeInstanceOf(MeetrecError);
    expect(err.code).toBe("browser_failed");
    expect(err.message).toMatch(/^Cannot start chromium \(capture\.chromiumPath\): /);
    expect(err.message).not.toContain(dir);
    expect(String((err as Error & { cause: Error }).cause.message)).toContain(exe);
  });

  test("ffprobe failures name the file, not its directory", async () => {
    const err = await probe(join(dir, "missing.mp4")).then(() => undefined, (e: unknown) => e) as MeetrecError;
    expect(err.code).toBe("finalize_failed");
    expect(err.message).toMatch(/^ffprobe cannot read missing\.mp4: /);
    expect(err.message).not.toContain(dir);
  });
});
