import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { backoffMs, deliverToSpool, eventType, filesPackage, isEmailAddress, isSafeSubdir, spoolDir } from "../../src/delivery/index.js";
import { deliveryTargets } from "../../src/hosts/targets.js";
import { parseConfig } from "../../src/config/index.js";
import type { Recording, RecordingOptions } from "../../src/store/index.js";
import { MeetrecError } from "../../src/util/errors.js";

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
    for (const bad of ["../x", "a/b", "", ".hidden", "a..b", "x".repeat(129), 7, undefined]) {
      expect(() => spoolDir(t, { tenant: bad })).toThrow(/metadata\.tenant/);
      expect(isSafeSubdir(bad)).toBe(false);
    }
    let caught: unknown;
    try { spoolDir(t, { tenant: "../../etc" }); } catch (err) { caught = err; }
    expect(caught).toBeInstanceOf(MeetrecError);
    expect(caught).toMatchObject({ code: "validation_failed", details: { field: "metadata.tenant" } });
  });
  test("e-mail addresses", () => {
    expect(["a@b", "owner.name+x@example.com"].every(isEmailAddress)).toBe(true);
    expect(["", "a", "a b@c", "<a@b>", "@b", "a@", 7, null].some(isEmailAddress)).toBe(false);
  });
});

describe("what a recording's targets need from its request", () => {
  const config = parseConfig({
    backends: {
      both: {
        apiKey: "both-backend-key-0123456789",
        delivery: {
          spool: { path: "/spool", subdirFromMetadata: "tenant" },
          email: { smtp: { host: "smtp.example.com" }, from: "meetrec <r@example.com>", toFromMetadata: "owner" },
        },
      },
      plain: { apiKey: "plain-backend-key-0123456789", delivery: { spool: { path: "/spool" } } },
      talk: { apiKey: "talk-backend-key-0123456789", talk: { url: "https://cloud.example.com/", secret: "talk-secret-0123456789" } },
    },
  });
  const rec = (backend: string, metadata: Record<string, unknown>, delivery?: RecordingOptions["delivery"]) => ({
    backend, metadata,
    options: { url: "https://m.example.com/", join: [], mode: "video" as const, browser: "chromium" as const, video: { width: 640, height: 360, fps: 10, bitrateKbps: 500 }, maxDurationSeconds: 60, ...(delivery ? { delivery } : {}) },
  });
  const targets = deliveryTargets(config);
  const fields = (r: ReturnType<typeof rec>) => targets.inputProblems(r).map((p) => p.field);

  test("the spool sub-directory: present and plain, unless the recording names its own or does not use the spool", () => {
    expect(fields(rec("both", { tenant: "school-7" }))).toEqual([]);
    expect(fields(rec("both", {}))).toEqual(["metadata.tenant"]);
    expect(fields(rec("both", { tenant: "../../etc" }))).toEqual(["metadata.tenant"]);
    expect(fields(rec("both", { tenant: null }))).toEqual(["metadata.tenant"]);
    expect(fields(rec("both", {}, { spool: { subdir: "one-off" } }))).toEqual([]);
    expect(fields(rec("both", { tenant: "../x" }, { targets: ["email"] }))).toEqual([]);
    expect(fields(rec("plain", { tenant: "../x" }))).toEqual([]); // no sub-directory from metadata there
  });
  test("the owner's address: absent is fine, present must be one", () => {
    expect(fields(rec("both", { tenant: "t", owner: "o@example.com" }))).toEqual([]);
    expect(fields(rec("both", { tenant: "t", owner: null }))).toEqual([]);
    expect(fields(rec("both", { tenant: "t", owner: "not an address" }))).toEqual(["metadata.owner"]);
    expect(fields(rec("both", { tenant: "t", owner: 42 }))).toEqual(["metadata.owner"]);
    expect(fields(rec("both", { tenant: "t", owner: "x" }, { email: { to: "o@example.com" } }))).toEqual([]);
    expect(fields(rec("both", { tenant: "t", owner: "x" }, { targets: ["spool"] }))).toEqual([]);
    expect(fields(rec("both", { owner: "x" }))).toEqual(["metadata.tenant", "metadata.owner"]);
  });
  test("the Talk upload is for recordings of a Talk conversation only", () => {
    expect(targets.fileTargets(rec("talk", {}))).toEqual([]);
    expect(targets.fileTargets(rec("talk", { talk: { token: "abc", backendUrl: "https://cloud.example.com", owner: "u" } }))).toEqual(["talk:upload"]);
    expect(targets.fileTargets(rec("both", { tenant: "t" }))).toEqual(["spool"]);
    expect(targets.fileTargets(rec("both", { tenant: "t" }, { targets: ["email"] }))).toEqual([]);
  });
});

describe("spool delivery names no server path in what clients see", () => {
  const rec = { id: "0b7c0c7e-1d7e-4a39-9d2f-5d1c0e3f8a11", metadata: { tenant: "school-7" } };
  const target = (path: string) => ({ path, subdirFromMetadata: "tenant", sshPort: 22, package: "files" as const });
  /** The `files` package's outputs: the file, then `sidecar` as `{id}.json`. */
  const files = (sidecar: unknown) => filesPackage.outputs(rec as unknown as Recording, file, { config: parseConfig({}), describe: () => sidecar });
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
    const r = await deliverToSpool(target(spool), rec, files({ id: rec.id }));
    expect(r.shown).toBe(`written to the spool directory: school-7/${rec.id}.mp4`);
    expect(r.dest).toBe(join(spool, "school-7", `${rec.id}.mp4`));
    expect(readFileSync(r.dest, "utf8")).toBe("not really a video");
    expect(JSON.parse(readFileSync(join(spool, "school-7", `${rec.id}.json`), "utf8"))).toEqual({ id: rec.id });
    expect(readdirSync(join(spool, "school-7")).sort()).toEqual([`${rec.id}.json`, `${rec.id}.mp4`]); // no temporary names left
    const once = await deliverToSpool(target(spool), rec, files({ id: rec.id }), "one-off"); // the request's sub-directory wins
    expect(once.shown).toBe(`written to the spool directory: one-off/${rec.id}.mp4`);
  });

  test("with a speakers sidecar: file, `{id}.mp4.speakers.json`, then `{id}.json` last", async () => {
    const spool = join(dir, "spool-speakers");
    const speakers = { version: 1 as const, file: "recording.mp4", fileStartedAt: null, sources: [{ id: "1/a", name: null }], intervals: [] };
    const outputs = filesPackage.outputs(rec as unknown as Recording, file, { config: parseConfig({}), describe: () => ({ id: rec.id }) }, { speakers });
    expect(outputs.map((o) => o.name)).toEqual([`${rec.id}.mp4`, `${rec.id}.mp4.speakers.json`, `${rec.id}.json`]);
    await deliverToSpool(target(spool), rec, outputs);
    expect(JSON.parse(readFileSync(join(spool, "school-7", `${rec.id}.mp4.speakers.json`), "utf8"))).toEqual(speakers);
  });

  test("with per-participant tracks: file, `{id}.mp4.track-{n}.ogg` in order, sidecar, then `{id}.json` last", async () => {
    const spool = join(dir, "spool-tracks");
    const t1 = join(dir, "recording.mp4.track-1.ogg");
    const t2 = join(dir, "recording.mp4.track-2.ogg");
    writeFileSync(t1, "one");
    writeFileSync(t2, "two");
    const speakers = { version: 1 as const, file: "recording.mp4", fileStartedAt: null, sources: [{ id: "1/a", name: null }], intervals: [] };
    const tracks = [{ name: "recording.mp4.track-1.ogg", path: t1 }, { name: "recording.mp4.track-2.ogg", path: t2 }];
    const outputs = filesPackage.outputs(rec as unknown as Recording, file, { config: parseConfig({}), describe: () => ({ id: rec.id }) }, { speakers, tracks });
    expect(outputs.map((o) => o.name)).toEqual([`${rec.id}.mp4`, `${rec.id}.mp4.track-1.ogg`, `${rec.id}.mp4.track-2.ogg`, `${rec.id}.mp4.speakers.json`, `${rec.id}.json`]);
    await deliverToSpool(target(spool), rec, outputs);
    expect(readFileSync(join(spool, "school-7", `${rec.id}.mp4.track-2.ogg`), "utf8")).toBe("two");
  });

  test("local failure: the error code, not the path (the path is in the cause, for the log)", async () => {
    const blocked = join(dir, "a-file");
    writeFileSync(blocked, "");
    const err = await deliverToSpool(target(blocked), rec, files({})).then(() => undefined, (e: Error) => e);
    expect(err?.message).toMatch(/^Cannot write to the spool directory \(sub-directory school-7\): (ENOTDIR|EEXIST): .* \(mkdir\)/);
    expect(err?.message).not.toContain(dir);
    expect(String((err?.cause as Error).message)).toContain(blocked);
  });

  test("remote: the host, never the user or the remote path", async () => {
    const t = { ...target("backup@127.0.0.1:/srv/secret-spool"), sshPort: 1, knownHostsFile: join(dir, "known_hosts") };
    const err = await deliverToSpool(t, rec, files({})).then(() => undefined, (e: Error) => e);
    expect(err?.message).toMatch(/^rsync to 127\.0\.0\.1: failed: .*(refused|closed|Connection)/i);
    expect(err?.message).not.toMatch(/secret-spool|backup@|meetrec-rsync-|\/tmp\//);
  }, 30_000);
});
