import { statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { ensureDefaultBackend, loadConfig } from "../../src/config/index.js";
import { MeetrecError } from "../../src/util/errors.js";
import { scratchDir } from "../helpers/scratch.js";

describe("configuration", () => {
  test("defaults make a usable config with no file", () => {
    const c = loadConfig(undefined, {});
    expect(c).toMatchObject({ listen: "127.0.0.1:8080", concurrency: 16, video: { width: 1280, height: 720, fps: 30 }, capture: { segmentSeconds: 2, stallSegments: 3 } });
    expect(c.capacity).toEqual({ cost: { video: 1, audio: 0.35 }, learnCost: true, minFreeMemoryBytes: 512 * 1024 * 1024 });
    expect(c.cluster).toMatchObject({ queue: "meetrec", lockDurationMs: 4000, stalledIntervalMs: 2000, reconcileIntervalMs: 5000 });
    expect(c.cluster.redisUrl).toBeUndefined(); // embedded mode needs no cluster settings
    expect(c.segments.s3).toBeUndefined();
    expect(c.dataDir).toMatch(/\/data$/);
  });

  test("cluster settings from the environment; bad URLs are refused with the key named", () => {
    const c = loadConfig(undefined, { MEETREC_CLUSTER__REDIS_URL: "redis://r:6379", MEETREC_CLUSTER__POSTGRES_URL: "postgres://u:p@db/meetrec", MEETREC_CLUSTER__LOCK_DURATION_MS: "6000" });
    expect(c.cluster).toMatchObject({ redisUrl: "redis://r:6379", postgresUrl: "postgres://u:p@db/meetrec", lockDurationMs: 6000 });
    expect(() => loadConfig(undefined, { MEETREC_CLUSTER__REDIS_URL: "http://r" })).toThrow(/cluster\.redisUrl/);
  });

  test("YAML file, then MEETREC_* environment on top (nested keys with __)", () => {
    const dir = scratchDir("meetrec-cfg-");
    const file = join(dir, "meetrec.yaml");
    writeFileSync(file, "listen: 0.0.0.0:9000\nvideo:\n  fps: 25\nbackends:\n  talk:\n    apiKey: abcdefghijklmnop1234\n    allowedOrigins: [https://cloud.example.com]\n");
    const c = loadConfig(file, { MEETREC_LISTEN: "unix:/run/m.sock", MEETREC_CAPTURE__SEGMENT_SECONDS: "4", MEETREC_VIDEO__WIDTH: "1920", MEETREC_VIDEO__HEIGHT: "1080", MEETREC_API_KEY: "zyxwvutsrqponmlk0000" });
    expect(c.listen).toBe("unix:/run/m.sock");
    expect(c.capture.segmentSeconds).toBe(4);
    expect(c.video).toMatchObject({ width: 1920, height: 1080, fps: 25 });
    expect(c.backends.talk.allowedOrigins).toEqual(["https://cloud.example.com"]);
    expect(c.backends.default.apiKey).toBe("zyxwvutsrqponmlk0000");
  });

  test("a bad key is named, with what is wrong", () => {
    const err = (() => { try { loadConfig(undefined, { MEETREC_CAPTURE__SEGMENT_SECONDS: "99", MEETREC_CONCURRENCY: "zero" }); } catch (e) { return e; } })() as MeetrecError;
    expect(err).toBeInstanceOf(MeetrecError);
    expect(err.code).toBe("config_invalid");
    expect(err.message).toMatch(/capture\.segmentSeconds: .*10/);
    expect(err.message).toMatch(/concurrency: /);
  });

  test("unknown keys and bad YAML are refused", () => {
    const dir = scratchDir("meetrec-cfg-");
    writeFileSync(join(dir, "a.yaml"), "listne: 1\n");
    expect(() => loadConfig(join(dir, "a.yaml"), {})).toThrow(/listne/);
    writeFileSync(join(dir, "b.yaml"), "a: [\n");
    expect(() => loadConfig(join(dir, "b.yaml"), {})).toThrow(/not valid YAML/);
    expect(() => loadConfig(join(dir, "missing.yaml"), {})).toThrow(/Cannot read/);
  });

  test("no backend → a generated key stored 0600 and reused", () => {
    const dir = scratchDir("meetrec-cfg-");
    const a = loadConfig(undefined, { MEETREC_DATA_DIR: dir });
    const file = ensureDefaultBackend(a)!;
    const b = loadConfig(undefined, { MEETREC_DATA_DIR: dir });
    ensureDefaultBackend(b);
    expect(a.backends.default.apiKey!.length).toBeGreaterThanOrEqual(32);
    expect(b.backends.default.apiKey).toBe(a.backends.default.apiKey);
    expect((statSync(file).mode & 0o777).toString(8)).toBe("600");
  });
});

describe("backend keys", () => {
  test("two backends with the same apiKey are refused, naming both and never the key", () => {
    const key = "shared-secret-key-0123456789";
    const err = (() => {
      try { loadConfig(undefined, { MEETREC_BACKENDS__ALPHA__API_KEY: key, MEETREC_BACKENDS__BETA__API_KEY: "other-key-0123456789abc", MEETREC_BACKENDS__GAMMA__API_KEY: key }); } catch (e) { return e; }
    })() as MeetrecError;
    expect(err).toBeInstanceOf(MeetrecError);
    expect(err.code).toBe("config_invalid");
    expect(err.message).toMatch(/backends\.gamma\.apiKey: .*alpha.*gamma/);
    expect(err.message).not.toMatch(/beta/);
    expect(err.message).not.toContain(key);
    expect(JSON.stringify(err.details)).not.toContain(key);
  });

  test("distinct keys, and backends without a key, pass", () => {
    const c = loadConfig(undefined, { MEETREC_BACKENDS__ALPHA__API_KEY: "alpha-key-0123456789abc", MEETREC_BACKENDS__BETA__API_KEY: "beta-key-0123456789abcd", MEETREC_BACKENDS__GAMMA__ALLOWED_ORIGINS: "[https://a.example]", MEETREC_BACKENDS__DELTA__ALLOWED_ORIGINS: "[https://b.example]" });
    expect(Object.keys(c.backends).sort()).toEqual(["alpha", "beta", "delta", "gamma"]);
  });
});
