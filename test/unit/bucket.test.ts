/**
 * The segment bucket's manifests on a real S3 endpoint (s3rver): each lease holder writes its
 * own manifest and readers take the newest epoch, so a fenced holder's late write cannot hide
 * the new holder's; embedded mode keeps one `manifest.json`; finding and deleting cover both.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ListObjectsV2Command, PutObjectCommand } from "@aws-sdk/client-s3";
import S3rver from "s3rver";
import { afterAll, beforeAll, expect, test } from "vitest";
import { SegmentBucket } from "../../src/config/schema.js";
import { RecordingBucket, recordingsInBucket } from "../../src/media/index.js";
import type { Manifest } from "../../src/media/manifest.js";
import { s3Client } from "../../src/util/s3.js";
import { MeetrecError } from "../../src/util/errors.js";
import { freePort } from "../../dev/server.js";

let s3: S3rver;
let dir: string;
let cfg: SegmentBucket;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "meetrec-bucket-"));
  const port = await freePort();
  s3 = new S3rver({ port, address: "127.0.0.1", silent: true, directory: join(dir, "s3"), configureBuckets: [{ name: "seg" }] });
  await s3.run();
  cfg = SegmentBucket.parse({ bucket: "seg", endpoint: `http://127.0.0.1:${port}`, forcePathStyle: true, accessKeyId: "S3RVER", secretAccessKey: "S3RVER", prefix: "m/" });
});
afterAll(async () => {
  await s3?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A manifest with `periods` periods (only the count matters here). */
const manifest = (periods: number) => ({ version: 1, periods: Array.from({ length: periods }, (_, i) => ({ period: i + 1, segments: [] })) }) as unknown as Manifest;

const keys = async (prefix: string) =>
  ((await s3Client(cfg).send(new ListObjectsV2Command({ Bucket: "seg", Prefix: prefix }))).Contents ?? []).map((o) => o.Key!).sort();

test("a fenced holder's late manifest cannot replace the new holder's: readers take the newest epoch", async () => {
  const id = "rec-cluster";
  const first = new RecordingBucket(cfg, id, 9);
  const second = new RecordingBucket(cfg, id, 10);
  const reader = new RecordingBucket(cfg, id);
  expect(await reader.getManifest()).toBeUndefined();
  await first.putManifest(manifest(1));
  expect((await reader.getManifest())?.periods).toHaveLength(1);
  await second.putManifest(manifest(2)); // the take-over: one more period
  await first.putManifest(manifest(1)); // the old holder wakes and writes once more
  expect((await reader.getManifest())?.periods).toHaveLength(2);
  // Epoch 10 sorts after 9 (keys are zero-padded), not before it as "10" < "9" would.
  expect(await keys(`m/recordings/${id}/`)).toEqual([`m/recordings/${id}/manifests/0000000009.json`, `m/recordings/${id}/manifests/0000000010.json`]);
});

test("embedded mode writes manifest.json; recordingsInBucket finds both kinds; deleteSegments removes segments and manifests, not the final file", async () => {
  const id = "rec-embedded";
  const b = new RecordingBucket(cfg, id);
  await b.putManifest(manifest(3));
  expect((await b.getManifest())?.periods).toHaveLength(3);
  const client = s3Client(cfg);
  for (const k of ["p1/init.mp4", "p1/000001.m4s", "recording.mp4"]) {
    await client.send(new PutObjectCommand({ Bucket: "seg", Key: b.key(k), Body: "x" }));
  }
  expect((await recordingsInBucket(cfg)).sort()).toEqual(["rec-cluster", "rec-embedded"]);
  expect(await b.deleteSegments()).toBe(3);
  expect(await keys(`m/recordings/${id}/`)).toEqual([`m/recordings/${id}/recording.mp4`]);
  expect(await new RecordingBucket(cfg, "rec-cluster").deleteSegments()).toBe(2);
  expect(await recordingsInBucket(cfg)).toEqual([]);
});

test("a final-file range beyond the end is range_not_satisfiable (416), not an SDK error", async () => {
  const id = crypto.randomUUID();
  const client = s3Client(cfg);
  await client.send(new PutObjectCommand({ Bucket: "seg", Key: `m/recordings/${id}/recording.mp4`, Body: "0123456789" }));
  const b = new RecordingBucket(cfg, id);
  const part = await b.openFinal("recording.mp4", "bytes=2-4");
  expect(part.contentRange).toBe("bytes 2-4/10");
  part.body.resume();
  const err = await b.openFinal("recording.mp4", "bytes=100-").then(() => undefined, (e: unknown) => e) as MeetrecError;
  expect(err).toBeInstanceOf(MeetrecError);
  expect(err.code).toBe("range_not_satisfiable");
  expect(err.status).toBe(416);
});
