/**
 * The segment bucket (s3rver on 127.0.0.1): segments go to the bucket as they close and leave
 * the local disk; while the bucket is down for 30 s they queue locally, in order, and all are
 * uploaded once it is back — no segment lost, one period. Finalize streams from the bucket,
 * then removes the bucket's segments.
 */
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { GetObjectCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import S3rver from "s3rver";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startSyncPage, type SyncPage } from "../../dev/sync-page.js";
import { checkPage } from "../../dev/media-check.js";
import { freePort, startServer, type TestServer } from "../../dev/server.js";
import { scratchDir } from "../helpers/scratch.js";

const BG: [number, number, number] = [0x20, 0x60, 0xc0];
const TERMINAL = ["completed", "failed", "aborted"];
let page: SyncPage;
let server: TestServer;
let s3: S3rver | undefined;
let port: number;
let dir: string;
let client: S3Client;

const startS3 = async () => {
  s3 = new S3rver({ port, address: "127.0.0.1", silent: true, directory: join(dir, "s3"), configureBuckets: [{ name: "segments" }] });
  await s3.run();
};
// The test stops the bucket itself; whatever fails, the hook stops a running one exactly once.
const stopS3 = async () => {
  const running = s3;
  s3 = undefined;
  await running?.close();
};

beforeAll(async () => {
  page = await startSyncPage();
  port = await freePort();
  dir = scratchDir("meetrec-segbucket-");
  await startS3();
  client = new S3Client({ region: "us-east-1", endpoint: `http://127.0.0.1:${port}`, forcePathStyle: true, credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" } });
  server = await startServer({ egress: { allowedOrigins: [page.origin] }, config: {
    segments: { s3: { bucket: "segments", endpoint: `http://127.0.0.1:${port}`, forcePathStyle: true, prefix: "site-1/", accessKeyId: "S3RVER", secretAccessKey: "S3RVER" } },
  } });
});

afterAll(async () => {
  await server?.stop();
  await stopS3();
  await page?.close();
});

const keys = async (prefix: string) => ((await client.send(new ListObjectsV2Command({ Bucket: "segments", Prefix: prefix }))).Contents ?? []).map((o) => o.Key!.slice(prefix.length)).sort();
const pending = async () => Number(/^meetrec_segments_pending\{[^}]*\} (\d+)$/m.exec((await server.api("GET", "/metrics")).body.toString())?.[1]);

describe("segment bucket", () => {
  test("bucket down for 30 s: segments queue on local disk, all are uploaded afterwards in one period; finalize streams from the bucket", async () => {
    const t0 = Date.now();
    const { id } = (await server.api("POST", "/v1/recordings", { url: page.url, maxDurationSeconds: 600, video: { width: 480, height: 270, fps: 15 } })).json();
    const prefix = `site-1/recordings/${id}/`;
    const live = await server.waitFor(id, (x) => x.segmentCount >= 3 || TERMINAL.includes(x.status), 60_000);
    expect(live.status).toBe("recording");
    // Uploaded segments leave the local disk; the bucket has them and a manifest.
    await new Promise((r) => setTimeout(r, 1500));
    const up = await keys(prefix);
    expect(up).toEqual(expect.arrayContaining(["manifest.json", "p1/init.mp4", "p1/000001.m4s", "p1/000002.m4s"]));
    expect(existsSync(join(server.dataDir, "recordings", id, "p1", "000001.m4s"))).toBe(false);
    // The live playlist still plays: its segments come from the bucket.
    const seg = await server.api("GET", `/v1/recordings/${id}/media/p1/000001.m4s`);
    expect(seg.status).toBe(200);
    expect(seg.body.subarray(4, 8).toString()).toMatch(/styp|moof/);

    await stopS3();
    const downAt = Date.now();
    await new Promise((r) => setTimeout(r, 30_000));
    const during = (await server.api("GET", `/v1/recordings/${id}`)).json();
    expect(during.status).toBe("recording");
    expect(during.events.map((e: any) => e.type)).toContain("segment_upload_failing");
    expect(await pending()).toBeGreaterThanOrEqual(10); // ~15 segments of 2 s wait locally
    const local = readdirSync(join(server.dataDir, "recordings", id, "p1")).filter((f) => f.endsWith(".m4s"));
    expect(local.length).toBeGreaterThanOrEqual(10);

    await startS3();
    const end = Date.now() + 30_000;
    while (await pending() > 1 && Date.now() < end) await new Promise((r) => setTimeout(r, 500));
    expect(await pending()).toBeLessThanOrEqual(1);
    const after = (await server.api("GET", `/v1/recordings/${id}`)).json();
    const recovered = after.events.find((e: any) => e.type === "segment_upload_recovered");
    expect(recovered.data.downMs).toBeGreaterThanOrEqual(Date.now() - downAt - 35_000);
    // Every segment up to now is in the bucket, numbered without a hole, and named by its manifest.
    const manifest = JSON.parse(await (await client.send(new GetObjectCommand({ Bucket: "segments", Key: `${prefix}manifest.json` }))).Body!.transformToString());
    const seqs: number[] = manifest.periods[0].segments.map((s: any) => s.seq);
    expect(seqs.length).toBeGreaterThanOrEqual(after.segmentCount - 1);
    expect(seqs).toEqual(seqs.map((_, i) => i + 1));
    const inBucket = await keys(prefix);
    for (const s of manifest.periods[0].segments) expect(inBucket).toContain(s.file);

    const stopSentAtMs = Date.now();
    await server.api("POST", `/v1/recordings/${id}/stop`);
    const rec = await server.waitFor(id, (x) => TERMINAL.includes(x.status), 90_000);
    expect(rec.status, JSON.stringify(rec.error)).toBe("completed");
    expect(rec.periods).toBe(1); // nothing was restarted, nothing lost
    const file = join(server.dir, "from-bucket.mp4");
    writeFileSync(file, (await server.api("GET", `/v1/recordings/${id}/file`)).body);
    // Before, during and after the outage: the page live, sounding and in step in every second,
    // from the request to the stop by the test's clock, with nothing missing in between.
    const seen = checkPage(file, { bg: BG, requestedAtMs: t0, endedByMs: Date.now(), stopSentAtMs, maxMissingS: 0.5 });
    expect(seen.runs.length).toBe(1);
    expect(seen.shownS).toBeGreaterThanOrEqual((stopSentAtMs - downAt) / 1000 + 4);
    expect(await keys(prefix)).toEqual([]); // the bucket's segments are removed once the file is made
  }, 240_000); // 30 s down + up to 30 s of catching up, on a busy machine more than the default 120 s
});
