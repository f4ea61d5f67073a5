import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { backoffMs, eventType } from "../../src/delivery/index.js";
import { deliverToSpool, spoolDir } from "../../src/delivery/index.js";

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

describe("spool delivery names no server path in what clients see", () => {
  const rec = { id: "0b7c0c7e-1d7e-4a39-9d2f-5d1c0e3f8a11", metadata: { tenant: "school-7" } };
  const target = (path: string) => ({ path, subdirFromMetadata: "tenant", sshPort: 22 });
  let dir: string;
  let file: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "meetrec-spool-unit-"));
    file = join(dir, "recording.mp4");
    writeFileSync(file, "not really a video");
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("local: written to the spool directory, sub-directory and file name only", async () => {
    const spool = join(dir, "spool");
    const r = await deliverToSpool(target(spool), rec, file, { id: rec.id });
    expect(r.shown).toBe(`written to the spool directory: school-7/${rec.id}.mp4`);
    expect(r.dest).toBe(join(spool, "school-7", `${rec.id}.mp4`));
    expect(readFileSync(r.dest, "utf8")).toBe("not really a video");
    const once = await deliverToSpool(target(spool), rec, file, { id: rec.id }, "one-off"); // the request's sub-directory wins
    expect(once.shown).toBe(`written to the spool directory: one-off/${rec.id}.mp4`);
  });

  test("local failure: the error code, not the path (the path is in the cause, for the log)", async () => {
    const blocked = join(dir, "a-file");
    writeFileSync(blocked, "");
    const err = await deliverToSpool(target(blocked), rec, file, {}).then(() => undefined, (e: Error) => e);
    expect(err?.message).toMatch(/^Cannot write to the spool directory \(sub-directory school-7\): (ENOTDIR|EEXIST): .* \(mkdir\)/);
    expect(err?.message).not.toContain(dir);
    expect(String((err?.cause as Error).message)).toContain(blocked);
  });

  test("remote: the host, never the user or the remote path", async () => {
    const t = { ...target("backup@127.0.0.1:/srv/secret-spool"), sshPort: 1, knownHostsFile: join(dir, "known_hosts") };
    const err = await deliverToSpool(t, rec, file, {}).then(() => undefined, (e: Error) => e);
    expect(err?.message).toMatch(/^rsync to 127\.0\.0\.1: failed: .*(refused|closed|Connection)/i);
    expect(err?.message).not.toMatch(/secret-spool|backup@|meetrec-rsync-|\/tmp\//);
  }, 30_000);
});
