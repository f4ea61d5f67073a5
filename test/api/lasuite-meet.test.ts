/**
 * La Suite Meet's side of delivery without recording a meeting (shared/protocols/lasuite-meet.md
 * §5, §8.4): the S3 key template, the storage event's shape and key encoding, the answers of a
 * double of Meet's storage hook (test/fixtures/meet-double.ts) and what meetrec does with each
 * — processed, retried (401, 404, 503), refused for good (403, "ignored": given up at once) —,
 * and a finished recording of a Meet backend going to s3rver under Meet's key, then to Meet.
 * The configuration checks for a Meet backend are here too.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import S3rver from "s3rver";
import { freePort } from "../../dev/server.js";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { parseConfig, s3KeyTemplateProblem } from "../../src/config/index.js";
import { DeliveryRefused, s3Key, s3KeyProblems } from "../../src/delivery/index.js";
import { EgressPolicy } from "../../src/egress/index.js";
import { EmbeddedHost } from "../../src/hosts/index.js";
import { deliveryTargets } from "../../src/hosts/targets.js";
import { minioEscapeKey, postStorageEvent, storageEvent } from "../../src/platforms/lasuite-meet/index.js";
import { resolveOptions } from "../../src/recordings/request.js";
import { createLogger } from "../../src/util/log.js";
import { startMeetDouble, type MeetDouble } from "../fixtures/meet-double.js";
import { finishedRecording } from "../helpers/recordings.js";
import { until } from "../helpers/until.js";

const BUCKET = "meet-media-storage";
const TOKEN = "storage-event-token-0123456789";
const MEET_KEY = "meet-backend-key-0123456789abcdef";
const egress = new EgressPolicy([]);

let dir: string;
let s3: S3rver;
let endpoint: string;
let meet: MeetDouble;
let app: EmbeddedHost;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "meetrec-api-meet-"));
  const port = await freePort();
  s3 = new S3rver({ port, address: "127.0.0.1", silent: true, directory: join(dir, "s3"), configureBuckets: [{ name: BUCKET }] });
  await s3.run();
  endpoint = `http://127.0.0.1:${port}`;
  meet = await startMeetDouble({ bucket: BUCKET, token: TOKEN, s3: { endpoint, accessKeyId: "S3RVER", secretAccessKey: "S3RVER" } });
  const meetBackend = (token: string) => ({
    apiKey: undefined,
    delivery: { s3: { bucket: BUCKET, endpoint, forcePathStyle: true, accessKeyId: "S3RVER", secretAccessKey: "S3RVER", key: "recordings/{metadata.meetRecordingId}.{ext}" } },
    lasuiteMeet: { storageEvent: { url: meet.url, token } },
  });
  app = await EmbeddedHost.start(parseConfig({
    dataDir: join(dir, "data"), capacity: { minFreeMemoryBytes: Number.MAX_SAFE_INTEGER },
    delivery: { retry: { initialDelayMs: 50, maxDelayMs: 100, factor: 2 }, pollIntervalMs: 20 },
    backends: { meet: { ...meetBackend(TOKEN), apiKey: MEET_KEY }, badtoken: meetBackend("not-the-token") },
  }), createLogger("silent"));
});

afterAll(async () => {
  await app?.close();
  await meet?.close();
  await s3?.close();
  rmSync(dir, { recursive: true, force: true });
});

const storageDelivery = async (id: string) => (await app.store.deliveries(id)).find((d) => d.target === "lasuite-meet:storage-event");

describe("the object key", () => {
  test("templates: placeholders, names, relative keys", () => {
    expect(s3KeyTemplateProblem("recordings/{id}/{file}")).toBeUndefined();
    expect(s3KeyTemplateProblem("recordings/{metadata.meetRecordingId}.{ext}")).toBeUndefined();
    expect(s3KeyTemplateProblem("recordings/{owner}.{ext}")).toMatch(/unknown placeholder \{owner\}/);
    expect(s3KeyTemplateProblem("recordings/{file}")).toMatch(/name the recording/);
    expect(s3KeyTemplateProblem("recordings/{id}")).toMatch(/\{file\} or \{ext\}/);
    expect(s3KeyTemplateProblem("/recordings/{id}.{ext}")).toMatch(/relative/);
    expect(s3KeyTemplateProblem("a/../{id}.{ext}")).toMatch(/relative/);
  });
  test("expanded from the recording: meetrec's layout by default, Meet's from its metadata", () => {
    const rec = { id: "0b6c-rec", metadata: { meetRecordingId: "6e0d3e59-5e36-4f5a-9a55-3d1b2a4b7c11" } };
    expect(s3Key({ prefix: "tenant-a/", key: "recordings/{id}/{file}" }, rec, "recording.mp4")).toBe("tenant-a/recordings/0b6c-rec/recording.mp4");
    expect(s3Key({ prefix: "", key: "recordings/{metadata.meetRecordingId}.{ext}" }, rec, "recording.ogg")).toBe("recordings/6e0d3e59-5e36-4f5a-9a55-3d1b2a4b7c11.ogg");
    for (const bad of [undefined, "../x", "a/b", ".x", 7]) {
      expect(s3KeyProblems({ key: "recordings/{metadata.m}.{ext}" }, { m: bad }).map((p) => p.field)).toEqual(["metadata.m"]);
      expect(() => s3Key({ prefix: "", key: "recordings/{metadata.m}.{ext}" }, { id: "x", metadata: { m: bad } }, "recording.mp4")).toThrow(/metadata\.m/);
    }
  });
});

describe("the storage event", () => {
  test("MinIO's key encoding (Go url.QueryEscape) and the fields Meet's MinioParser reads", () => {
    expect(minioEscapeKey("recordings/6e0d3e59-5e36-4f5a-9a55-3d1b2a4b7c11.mp4")).toBe("recordings%2F6e0d3e59-5e36-4f5a-9a55-3d1b2a4b7c11.mp4");
    expect(minioEscapeKey("a b/c!d~e_f.g*(h)'")).toBe("a+b%2Fc%21d~e_f.g%2A%28h%29%27");
    const ev = storageEvent({ bucket: BUCKET, key: "recordings/x.ogg", contentType: "audio/ogg", bytes: 1234, region: "us-east-1", at: new Date(0) }) as any;
    expect(ev.EventName).toBe("s3:ObjectCreated:Put");
    expect(ev.Key).toBe(`${BUCKET}/recordings%2Fx.ogg`);
    expect(ev.Records[0].s3).toMatchObject({ bucket: { name: BUCKET }, object: { key: "recordings%2Fx.ogg", contentType: "audio/ogg", size: 1234 } });
  });

  test("Meet's answers: processed; refused for good (403, ignored); passing (401, 404, 503) to retry", async () => {
    const id = randomUUID();
    meet.recordings.set(id, "active");
    const ev = (o: { key?: string; bucket?: string; type?: string } = {}) => storageEvent({ bucket: o.bucket ?? BUCKET, key: o.key ?? `recordings/${id}.mp4`, contentType: o.type ?? "video/mp4", bytes: 1, region: "us-east-1", at: new Date() });
    const post = (event: unknown, token = TOKEN) => postStorageEvent(meet.url, token, event, 5000, egress);
    const refused = async (p: Promise<string>, re: RegExp) => { const err = await p.catch((e: unknown) => e); expect(err).toBeInstanceOf(DeliveryRefused); expect(String(err)).toMatch(re); };
    const passing = async (p: Promise<string>, re: RegExp) => { const err = await p.catch((e: unknown) => e); expect(err).toBeInstanceOf(Error); expect(err).not.toBeInstanceOf(DeliveryRefused); expect(String(err)).toMatch(re); };

    await passing(post(ev(), "wrong-token"), /401.*RECORDING_STORAGE_EVENT_TOKEN/);
    await refused(post(ev({ bucket: "other" })), /403: Invalid bucket specified/);
    await refused(post(ev({ type: "audio/mp4", key: `recordings/${id}.m4a` })), /ignored/);
    // A raw "/" in the key (not URL-encoded as MinIO sends it) is not Meet's pattern.
    const raw = ev() as any;
    raw.Records[0].s3.object.key = `recordings/${id}.mp4`;
    await refused(post(raw), /ignored/);
    await passing(post(ev({ key: `recordings/${randomUUID()}.mp4` })), /404.*does Meet know this recording/);
    meet.failNext(1);
    await passing(post(ev()), /503/);
    expect(await post(ev())).toBe("Meet answered 200: Event processed.");
    expect(meet.recordings.get(id)).toBe("saved");
    await refused(post(ev()), /403: Recording with ID .* cannot be saved/);
  });
});

describe("a finished recording of a Meet backend", () => {
  test("goes to the bucket under Meet's key, then Meet is told once; the object is the file", async () => {
    const meetId = randomUUID();
    meet.recordings.set(meetId, "active");
    const { id, bytes } = await finishedRecording(app, "meet", { metadata: { meetRecordingId: meetId } });
    const d = await until("the storage event delivered", async () => (await storageDelivery(id))?.status === "succeeded" && storageDelivery(id));
    expect(d!.attempts).toBe(1);
    const rec = (await app.store.get(id))!;
    expect(rec.status).toBe("completed");
    expect(rec.file!.s3).toEqual({ bucket: BUCKET, key: `recordings/${meetId}.mp4` });
    const seen = meet.events.filter((e) => e.recordingId === meetId);
    expect(seen).toHaveLength(1);
    expect(seen[0].objectContentType).toBe("video/mp4");
    expect(Buffer.compare(seen[0].object!, bytes)).toBe(0);
  });

  test("Meet refusing it (already saved) gives the event up at once; the recording stays completed", async () => {
    const meetId = randomUUID();
    meet.recordings.set(meetId, "saved");
    const { id } = await finishedRecording(app, "meet", { metadata: { meetRecordingId: meetId } });
    const d = await until("the storage event given up", async () => (await storageDelivery(id))?.status === "failed" && storageDelivery(id));
    expect(d!.attempts).toBe(1);
    expect((await app.store.get(id))!.status).toBe("completed");
    const gaveUp = (await app.store.events(id)).find((e) => e.type === "delivery_given_up");
    expect(gaveUp?.message).toMatch(/refused it for good.*cannot be saved/);
  });

  test("a wrong token is retried (the operator may fix it), not given up", async () => {
    const meetId = randomUUID();
    meet.recordings.set(meetId, "active");
    const { id } = await finishedRecording(app, "badtoken", { metadata: { meetRecordingId: meetId } });
    const d = await until("two attempts", async () => ((await storageDelivery(id))?.attempts ?? 0) >= 2 && storageDelivery(id));
    expect(d!.status).toBe("pending");
    expect(d!.lastError).toMatch(/401/);
    expect(meet.recordings.get(meetId)).toBe("active");
  });
});

describe("configuration and requests of a Meet backend", () => {
  const s3 = { bucket: BUCKET, endpoint: "http://127.0.0.1:9000", forcePathStyle: true, key: "recordings/{metadata.meetRecordingId}.{ext}" };
  const hook = { storageEvent: { url: "https://meet.example.com/api/v1.0/recordings/storage-hook/", token: TOKEN } };
  test("the storage event needs delivery.s3 with a key Meet can read; Talk backends stay AAC", () => {
    expect(() => parseConfig({ backends: { m: { apiKey: MEET_KEY, lasuiteMeet: hook } } })).toThrow(/delivery\.s3/);
    expect(() => parseConfig({ backends: { m: { apiKey: MEET_KEY, lasuiteMeet: hook, delivery: { s3: { ...s3, key: "recordings/{id}/{file}" } } } } })).toThrow(/RECORDING_OUTPUT_FOLDER/);
    expect(() => parseConfig({ backends: { m: { apiKey: MEET_KEY, lasuiteMeet: hook, delivery: { s3 } } } })).not.toThrow();
    expect(() => parseConfig({ backends: { m: { apiKey: MEET_KEY, delivery: { s3: { ...s3, key: "recordings/{owner}.{ext}" } } } } })).toThrow(/unknown placeholder/);
    expect(() => parseConfig({ backends: { t: { talk: { url: "https://cloud.example.com/", secret: "talk-secret-0123456789" }, audioFormat: "opus" } } })).toThrow(/audioFormat.*Talk|Talk.*aac/);
  });
  test("audioFormat: the backend's by default, the request's over it, never for video", () => {
    const cfg = parseConfig({ backends: { m: { apiKey: MEET_KEY, audioFormat: "opus" }, plain: { apiKey: "plain-backend-key-0123456789" } } });
    const req = { url: "https://meet.example.com/r" };
    expect(resolveOptions(cfg, "m", { ...req, mode: "audio" }).audioFormat).toBe("opus");
    expect(resolveOptions(cfg, "m", { ...req, mode: "audio", audioFormat: "aac" }).audioFormat).toBe("aac");
    expect(resolveOptions(cfg, "plain", { ...req, mode: "audio" }).audioFormat).toBe("aac");
    expect(resolveOptions(cfg, "m", req).audioFormat).toBeUndefined();
    expect(() => resolveOptions(cfg, "m", { ...req, audioFormat: "opus" })).toThrow(/audio-only/);
  });
  test("Meet's recording id must be a UUID, and transcripts Opus", () => {
    const cfg = parseConfig({ backends: { m: { apiKey: MEET_KEY, lasuiteMeet: hook, delivery: { s3 } } } });
    const problems = (metadata: Record<string, unknown>, audioFormat?: "aac" | "opus") => deliveryTargets(cfg).inputProblems({
      backend: "m", metadata,
      options: { url: "https://m.example.com/", join: [], mode: audioFormat ? "audio" : "video", ...(audioFormat ? { audioFormat } : {}), browser: "chromium", video: { width: 640, height: 360, fps: 10, bitrateKbps: 500 }, maxDurationSeconds: 60 },
    }).map((p) => p.field);
    expect(problems({ meetRecordingId: randomUUID() })).toEqual([]);
    expect(problems({ meetRecordingId: randomUUID() }, "opus")).toEqual([]);
    expect(problems({ meetRecordingId: randomUUID() }, "aac")).toEqual(["audioFormat"]);
    expect(problems({ meetRecordingId: "not-a-uuid" })).toEqual(["metadata.meetRecordingId"]);
    expect(problems({})).toEqual(["metadata.meetRecordingId", "metadata.meetRecordingId"]);
  });
});
