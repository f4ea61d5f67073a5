/**
 * The `s3` target with per-participant tracks, on a real S3 endpoint (s3rver): each track goes
 * to the file's key + `.track-{n}.ogg` before the file itself (an importer that waits for the
 * file finds them there), and a deleted recording's tracks go with it.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GetObjectCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import S3rver from "s3rver";
import { afterAll, beforeAll, expect, test } from "vitest";
import { S3Target } from "../../src/config/schema.js";
import { deleteFromS3, s3Target } from "../../src/delivery/index.js";
import type { DeliveryContext } from "../../src/delivery/registry.js";
import type { Recording } from "../../src/store/index.js";
import { s3Client } from "../../src/util/s3.js";
import { freePort } from "../../dev/server.js";

let s3: S3rver;
let dir: string;
let t: S3Target;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "meetrec-s3-tracks-"));
  const port = await freePort();
  s3 = new S3rver({ port, address: "127.0.0.1", silent: true, directory: join(dir, "s3"), configureBuckets: [{ name: "out" }] });
  await s3.run();
  t = S3Target.parse({ bucket: "out", endpoint: `http://127.0.0.1:${port}`, forcePathStyle: true, accessKeyId: "S3RVER", secretAccessKey: "S3RVER", prefix: "p/" });
});
afterAll(async () => {
  await s3?.close();
  rmSync(dir, { recursive: true, force: true });
});

test("tracks at the file's key + .track-{n}.ogg, uploaded before the file; deleted with it", async () => {
  const file = join(dir, "recording.mp4");
  writeFileSync(file, "mp4");
  const tracks = [1, 2].map((n) => ({ name: `recording.mp4.track-${n}.ogg`, path: join(dir, `recording.mp4.track-${n}.ogg`) }));
  tracks.forEach((tr, i) => writeFileSync(tr.path, `ogg${i + 1}`));
  const rec = {
    id: "r1", backend: "default", metadata: {}, options: {},
    file: { name: "recording.mp4", bytes: 3, durationSeconds: 1, streams: [], tracks: tracks.map((tr) => ({ name: tr.name, source: "1/x", startedAt: "", durationSeconds: 1, bytes: 4 })) },
  } as unknown as Recording;
  const order: string[] = [];
  const ctx = {
    backend: { delivery: { s3: t } },
    store: { speakerIntervals: async () => [], mergeFile: async () => undefined },
    filePath: async () => { order.push("file"); return file; },
    trackPaths: async () => { order.push("tracks"); return tracks; },
  } as unknown as DeliveryContext;
  expect(await s3Target.deliver({} as never, rec, ctx)).toBe("uploaded to s3://out/p/recordings/r1/recording.mp4");
  expect(order).toEqual(["tracks", "file"]);
  const keys = async () => ((await s3Client(t).send(new ListObjectsV2Command({ Bucket: "out", Prefix: "p/" }))).Contents ?? []).map((o) => o.Key!).sort();
  expect(await keys()).toEqual(["p/recordings/r1/recording.mp4", "p/recordings/r1/recording.mp4.track-1.ogg", "p/recordings/r1/recording.mp4.track-2.ogg"]);
  const obj = await s3Client(t).send(new GetObjectCommand({ Bucket: "out", Key: "p/recordings/r1/recording.mp4.track-2.ogg" }));
  expect(obj.ContentType).toBe("audio/ogg");
  expect(await obj.Body!.transformToString()).toBe("ogg2");
  await deleteFromS3(t, { bucket: "out", key: "p/recordings/r1/recording.mp4" }, rec.file!);
  expect(await keys()).toEqual([]);
});
