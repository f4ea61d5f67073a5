/**
 * S3 delivery against s3rver on 127.0.0.1: failing first (the service is not up yet), then
 * uploaded; `file.url` is a presigned GET URL that downloads the same bytes; DELETE removes the
 * object from the bucket too.
 */
import { join } from "node:path";
import { HeadObjectCommand, S3Client } from "@aws-sdk/client-s3";
import S3rver from "s3rver";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startSyncPage, type SyncPage } from "../../dev/sync-page.js";
import { freePort, startServer, type TestServer } from "../../dev/server.js";
import { scratchDir } from "../helpers/scratch.js";

let page: SyncPage;
let server: TestServer;
let s3: S3rver | undefined;
let port: number;
let dir: string;

beforeAll(async () => {
  page = await startSyncPage();
  port = await freePort();
  dir = scratchDir("meetrec-s3-");
  server = await startServer({ egress: { allowedOrigins: [page.origin] }, config: {
    delivery: { retry: { initialDelayMs: 300, maxDelayMs: 1000, factor: 2 }, pollIntervalMs: 100, attemptTimeoutMs: 5000 },
    backends: {
      default: {
        apiKey: "test-key-0123456789abcdef",
        delivery: { s3: { bucket: "recordings", endpoint: `http://127.0.0.1:${port}`, forcePathStyle: true, prefix: "tenant-a/", accessKeyId: "S3RVER", secretAccessKey: "S3RVER", presignSeconds: 3600 } },
      },
    },
  } });
});

afterAll(async () => {
  await server?.stop();
  await s3?.close();
  await page?.close();
});

describe("S3 delivery", () => {
  test("fails while the bucket is unreachable, then uploads; presigned URL; DELETE removes the object", async () => {
    const { id } = (await server.api("POST", "/v1/recordings", { url: page.url, maxDurationSeconds: 5, video: { width: 480, height: 270, fps: 15 } })).json();
    const stuck = await server.waitFor(id, (r) => r.status === "delivering" && r.deliveries?.find((d: any) => d.target === "s3")?.attempts.length >= 2, 60_000);
    expect(stuck.deliveries.find((d: any) => d.target === "s3").attempts[0].outcome).toBe("error");
    expect(stuck.file.url).toMatch(new RegExp(`/v1/recordings/${id}/file$`)); // not in the bucket yet

    s3 = new S3rver({ port, address: "127.0.0.1", silent: true, directory: join(dir, "s3"), configureBuckets: [{ name: "recordings" }] });
    await s3.run();
    const done = await server.waitFor(id, (r) => r.status === "completed", 30_000);
    const url = new URL(done.file.url);
    expect(url.origin).toBe(`http://127.0.0.1:${port}`);
    expect(url.pathname).toBe(`/recordings/tenant-a/recordings/${id}/recording.mp4`);
    expect(url.searchParams.get("X-Amz-Signature")).toMatch(/^[0-9a-f]{64}$/);
    expect(url.searchParams.get("X-Amz-Expires")).toBe("3600");
    const fromBucket = Buffer.from(await (await fetch(done.file.url)).arrayBuffer());
    const fromApi = (await server.api("GET", `/v1/recordings/${id}/file`)).body;
    expect(fromBucket.length).toBeGreaterThan(10_000);
    expect(Buffer.compare(fromBucket, fromApi)).toBe(0);

    const client = new S3Client({ region: "us-east-1", endpoint: `http://127.0.0.1:${port}`, forcePathStyle: true, credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" } });
    const head = { Bucket: "recordings", Key: `tenant-a/recordings/${id}/recording.mp4` };
    expect((await client.send(new HeadObjectCommand(head))).ContentLength).toBe(fromApi.length);
    expect((await server.api("DELETE", `/v1/recordings/${id}`)).status).toBe(204);
    await expect(client.send(new HeadObjectCommand(head))).rejects.toMatchObject({ $metadata: { httpStatusCode: 404 } });
    client.destroy();
  });
});
