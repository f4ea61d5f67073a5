/**
 * La Suite Meet end to end (shared/protocols/lasuite-meet.md): Meet's worker class
 * (`integrations/lasuite-meet/meetrec_meet.py`) runs under Debian's python3, Meet's own modules
 * stubbed, against a running `meetrec serve`; it starts and stops a transcript (audio) and a
 * screen recording of the sync page, and one that is stopped before anything was captured.
 * meetrec uploads each file to s3rver under Meet's key (`recordings/{Meet's id}.{ogg|mp4}`) and
 * posts the storage event to a double of Meet's storage hook, which applies Meet's checks
 * (token, MinioParser, key pattern, status) and fetches the object from the bucket. The files
 * Meet would serve are then checked as a listener would: codec and container, and the page's
 * 500 Hz tone window by window. Meet is down for the first event (503): the delivery retries.
 */
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { createServer, connect, type Server } from "node:net";
import { join } from "node:path";
import S3rver from "s3rver";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { checkTone, probe } from "../../dev/media-check.js";
import { REPO_ROOT } from "../../dev/meeting.js";
import { freePort, startServer, unixRequest, type TestServer } from "../../dev/server.js";
import { startSyncPage, type SyncPage } from "../../dev/sync-page.js";
import { startMeetDouble, type MeetDouble } from "../fixtures/meet-double.js";
import { scratchDir } from "../helpers/scratch.js";

const MEET_KEY = "meet-backend-key-0123456789abcdef";
const HOOK_TOKEN = "storage-event-token-0123456789";
const BUCKET = "meet-media-storage";
/** The sync page's steady tone (dev/sync-page.ts). */
const TONE_HZ = 500;
/** Debian's python3, as the issue asks (not a pyenv shim). */
const PYTHON = "/usr/bin/python3";

let page: SyncPage;
let server: TestServer;
let s3: S3rver;
let meet: MeetDouble;
let proxy: Server;
let dir: string;
const ids = { transcript: randomUUID(), screen_recording: randomUUID(), aborted: randomUUID() };

/** A TCP port that forwards to the server's Unix socket (the worker class speaks plain HTTP). */
async function tcpToSocket(socket: string): Promise<{ server: Server; port: number }> {
  const srv = createServer((c) => {
    const up = connect(socket);
    c.pipe(up).pipe(c);
    c.on("error", () => up.destroy());
    up.on("error", () => c.destroy());
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  return { server: srv, port: (srv.address() as { port: number }).port };
}

/** GET a recording of the `meet` backend. */
async function meetRecording(id: string): Promise<any> {
  return (await unixRequest(server.socket, "GET", `/v1/recordings/${id}`, { headers: { authorization: `Bearer ${MEET_KEY}` } })).json();
}

async function waitMeet(id: string, until: (r: any) => boolean, timeoutMs = 60_000): Promise<any> {
  const end = Date.now() + timeoutMs;
  let rec: any;
  while (Date.now() < end) {
    rec = await meetRecording(id);
    if (until(rec)) return rec;
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`recording ${id} did not get there: ${JSON.stringify(rec).slice(0, 2000)}`);
}

/** Runs the worker class's tests under python3; resolves with their output, rejects when they fail. */
function runPython(env: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, ["-m", "unittest", "-v", "test_meetrec_meet"], {
      cwd: join(REPO_ROOT, "integrations/lasuite-meet/tests"),
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", LANG: "C.UTF-8", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => { out += d; });
    child.stderr.on("data", (d: Buffer) => { out += d; });
    const timer = setTimeout(() => child.kill("SIGKILL"), 240_000);
    child.on("exit", (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`python3 worker-class tests exited ${code}:\n${out.slice(-6000)}\n--- server log ---\n${server.log().slice(-4000)}`));
    });
  });
}

beforeAll(async () => {
  dir = scratchDir("meetrec-meet-");
  page = await startSyncPage();
  const s3Port = await freePort();
  s3 = new S3rver({ port: s3Port, address: "127.0.0.1", silent: true, directory: join(dir, "s3"), configureBuckets: [{ name: BUCKET }] });
  await s3.run();
  const endpoint = `http://127.0.0.1:${s3Port}`;
  meet = await startMeetDouble({ bucket: BUCKET, token: HOOK_TOKEN, s3: { endpoint, accessKeyId: "S3RVER", secretAccessKey: "S3RVER" } });
  for (const id of Object.values(ids)) meet.recordings.set(id, "active"); // Meet's recordings after start()
  server = await startServer({ config: {
    delivery: { retry: { initialDelayMs: 300, maxDelayMs: 1000, factor: 2 }, pollIntervalMs: 100, attemptTimeoutMs: 5000 },
    backends: {
      meet: {
        apiKey: MEET_KEY,
        allowedOrigins: [page.origin],
        audioFormat: "opus",
        delivery: { s3: { bucket: BUCKET, endpoint, forcePathStyle: true, accessKeyId: "S3RVER", secretAccessKey: "S3RVER", key: "recordings/{metadata.meetRecordingId}.{ext}" } },
        lasuiteMeet: { storageEvent: { url: meet.url, token: HOOK_TOKEN } },
        video: { width: 640, height: 360, fps: 15, bitrateKbps: 600 },
      },
    },
  } });
  proxy = (await tcpToSocket(server.socket)).server;
}, 60_000);

afterAll(async () => {
  await server?.stop();
  await new Promise((r) => proxy?.close(r));
  await meet?.close();
  await s3?.close();
  await page?.close();
});

describe("La Suite Meet", () => {
  test("the worker class records through meetrec; Meet gets Ogg/Opus and MP4 under its keys and one storage event each", async () => {
    meet.failNext(1); // Meet is down for the first event
    const out = join(dir, "python-out.json");
    const log = await runPython({
      MEETREC_API_URL: `http://127.0.0.1:${(proxy.address() as { port: number }).port}`,
      MEETREC_API_KEY: MEET_KEY,
      MEETREC_RECORDER_URL: page.url,
      MEET_RECORDING_IDS: JSON.stringify(ids),
      MEETREC_RECORD_SECONDS: "5",
      MEETREC_TEST_OUT: out,
    });
    expect(log).toMatch(/Ran 10 tests/);
    expect(log).not.toMatch(/skipped/);
    const ran = JSON.parse(readFileSync(out, "utf8")) as Record<string, { meetId: string; workerId: string }>;

    for (const [mode, ext, type] of [["transcript", "ogg", "audio/ogg"], ["screen_recording", "mp4", "video/mp4"]] as const) {
      const { meetId, workerId } = ran[mode];
      const rec = await waitMeet(workerId, (r) => r.status === "completed" && r.deliveries?.find((d: any) => d.target === "lasuite-meet:storage-event")?.status === "succeeded");
      expect(rec.file.name).toBe(`recording.${ext}`);
      const processed = meet.events.filter((e) => e.recordingId === meetId);
      expect(processed).toHaveLength(1);
      const ev = processed[0];
      expect(ev.authorization).toBe(`Bearer ${HOOK_TOKEN}`);
      expect((ev.body as any).Records[0].s3.object.key).toBe(`recordings%2F${meetId}.${ext}`);
      expect((ev.body as any).Key).toBe(`${BUCKET}/recordings%2F${meetId}.${ext}`);
      expect(ev.key).toBe(`recordings/${meetId}.${ext}`);
      expect(ev.contentType).toBe(type);
      expect(ev.objectError).toBeUndefined(); // the object was in the bucket when Meet was told
      expect(ev.objectContentType).toBe(type);
      expect(ev.object!.length).toBe(rec.file.bytes);
      expect(meet.recordings.get(meetId)).toBe("saved");

      const file = join(dir, `${mode}.${ext}`);
      writeFileSync(file, ev.object!);
      const p = probe(file);
      if (mode === "transcript") {
        expect(p.video).toBeUndefined();
        expect(p.audio).toMatchObject({ codec: "opus", rate: 48000, channels: 2 });
        expect(readFileSync(file).subarray(0, 4).toString("latin1")).toBe("OggS");
      } else {
        expect(p.video).toMatchObject({ codec: "h264", width: 640, height: 360 });
        expect(p.audio).toMatchObject({ codec: "aac" });
      }
      // The recording ran ≥ 5 s after meetrec reported it recording: most of it is the page.
      expect(p.durationS).toBeGreaterThan(4.5);
      checkTone(file, TONE_HZ, { label: `${mode}: the page's ${TONE_HZ} Hz tone` });
    }

    // Meet was down once: that attempt failed and was retried; nothing else failed.
    const failed = meet.events.filter((e) => e.status !== 200);
    expect(failed.map((e) => e.status)).toEqual([503]);
    expect(meet.events.filter((e) => e.status === 200)).toHaveLength(2);

    // Stopped before anything was captured: no file, no event.
    const aborted = await waitMeet(ran.aborted.workerId, (r) => ["aborted", "completed", "failed"].includes(r.status));
    expect(aborted.status).toBe("aborted");
    expect(meet.events.some((e) => e.recordingId === ids.aborted)).toBe(false);
  }, 300_000);

  test("a recording Meet's key cannot name is refused at the door, and nothing is created", async () => {
    const post = (body: unknown) => unixRequest(server.socket, "POST", "/v1/recordings", { body, headers: { authorization: `Bearer ${MEET_KEY}` } });
    const before = (await unixRequest(server.socket, "GET", "/v1/recordings", { headers: { authorization: `Bearer ${MEET_KEY}` } })).json();
    const noId = await post({ url: page.url, mode: "audio", metadata: {} });
    expect(noId.status).toBe(422);
    expect(noId.json().errors.map((e: any) => e.field)).toContain("metadata.meetRecordingId");
    const notUuid = await post({ url: page.url, mode: "audio", metadata: { meetRecordingId: "not-a-uuid" } });
    expect(notUuid.status).toBe(422);
    expect(notUuid.json().detail).toMatch(/UUID/);
    const aac = await post({ url: page.url, mode: "audio", audioFormat: "aac", metadata: { meetRecordingId: randomUUID() } });
    expect(aac.status).toBe(422);
    expect(aac.json().errors.map((e: any) => e.field)).toContain("audioFormat");
    const after = (await unixRequest(server.socket, "GET", "/v1/recordings", { headers: { authorization: `Bearer ${MEET_KEY}` } })).json();
    expect(after).toEqual(before);
  });
});
