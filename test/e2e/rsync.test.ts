/**
 * Spool over rsync + SSH to a local sshd on 127.0.0.1 whose key is restricted by rrsync: fails
 * while sshd is down, succeeds on retry; tenant sub-directory; file and sidecar complete.
 */
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { prepareSshd, type Sshd } from "../fixtures/sshd.js";
import { startSyncPage, type SyncPage } from "../../dev/sync-page.js";
import { freePort, startServer, type TestServer } from "../../dev/server.js";

let page: SyncPage;
let server: TestServer;
let sshd: Sshd;

beforeAll(async () => {
  page = await startSyncPage();
  const port = await freePort();
  sshd = prepareSshd(port);
  server = await startServer({ egress: { allowedOrigins: [page.origin] }, config: {
    delivery: { retry: { initialDelayMs: 300, maxDelayMs: 1000, factor: 2 }, pollIntervalMs: 100 },
    backends: { default: { apiKey: "test-key-0123456789abcdef", delivery: { spool: {
      path: "root@127.0.0.1:incoming", subdirFromMetadata: "instance", sshKey: sshd.clientKey, sshPort: port, knownHostsFile: sshd.knownHosts,
    } } } },
  } });
});

afterAll(async () => {
  await server?.stop();
  await sshd?.stop();
  await page?.close();
});

describe("spool over rsync + SSH (rrsync-restricted key)", () => {
  test("fails while sshd is down, then delivers file and sidecar under the instance directory", async () => {
    const { id } = (await server.api("POST", "/v1/recordings", { url: page.url, maxDurationSeconds: 4, video: { width: 320, height: 180, fps: 10 }, metadata: { instance: "pilos-2" } })).json();
    const stuck = await server.waitFor(id, (r) => r.status === "delivering" && r.deliveries?.find((d: any) => d.target === "spool")?.attempts.length >= 2, 60_000);
    expect(stuck.deliveries.find((d: any) => d.target === "spool").attempts[0].message).toMatch(/^rsync to 127\.0\.0\.1: failed: .*(refused|closed|Connection)/i); // the host, not the user or the remote path
    await sshd.start();
    const done = await server.waitFor(id, (r) => r.status === "completed", 30_000);
    const dir = join(sshd.root, "incoming", "pilos-2");
    expect(readdirSync(dir).sort()).toEqual([`${id}.json`, `${id}.mp4`]); // no temporary files left
    const api = (await server.api("GET", `/v1/recordings/${id}/file`)).body;
    expect(Buffer.compare(readFileSync(join(dir, `${id}.mp4`)), api)).toBe(0);
    expect(JSON.parse(readFileSync(join(dir, `${id}.json`), "utf8"))).toMatchObject({ id, metadata: { instance: "pilos-2" } });
    expect(done.deliveries.find((d: any) => d.target === "spool").attempts.at(-1)).toMatchObject({ outcome: "ok", message: `written to the spool on 127.0.0.1: pilos-2/${id}.mp4` });
    expect(existsSync(join(sshd.root, "..", "incoming"))).toBe(false); // rrsync kept it inside its root
  });
});
