/**
 * OpenVidu 2's recording container (shared/protocols/openvidu-recording.md): `meetrec
 * openvidu-recorder` run by a stand-in for openvidu-server (test/fixtures/openvidu-server.ts)
 * with the environment the server passes, recording the Janus meeting (in its network
 * namespace, where the container's processes run too), stopped the way the server stops it;
 * every file the server reads is checked as the server reads it, and the media file as a viewer
 * would see it (dev/media-check.ts). Also: a stop before the first frame; a container killed -9
 * and continued by the next one for the same id (segments in a bucket, the bucket's settings
 * in the recordings folder's `.env`); and the quick start (the sync page behind OpenVidu's
 * basic auth, outside the namespace): the browser waits open, records on `--start-recording`,
 * and `{id}.info` is there when `--stop-recording` returns.
 *
 * Over 300 lines: the scenarios share one meeting (started once per file, which keeps the
 * suite's time down), so they live in one file.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, request, type Server } from "node:http";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { REPO_ROOT, startMeeting, type Meeting } from "../../dev/meeting.js";
import { checkMeeting, checkPage, checkTiles, decodeFrames, probe } from "../../dev/media-check.js";
import { startSyncPage, type SyncPage } from "../../dev/sync-page.js";
import { OpenViduStandIn, frameSize, recordingJson, standInDir, type Container, type OvRecording } from "../fixtures/openvidu-server.js";
import { recordingProcesses, stillRunning, untilEmpty } from "../helpers/processes.js";

const SECRET = `MY_SECRET_${Math.random().toString(36).slice(2, 10)}`;
const BG: [number, number, number] = [0x20, 0x60, 0xc0];
let meeting: Meeting;
let dir: string;
let recordings: string;
let ov: OpenViduStandIn;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The meeting page as openvidu-server passes a layout: its secret as user info, in the query and in the fragment. */
function layoutUrl(base: string): string {
  const u = new URL(base);
  u.username = "OPENVIDUAPP";
  u.password = SECRET;
  u.searchParams.set("secret", SECRET);
  u.hash = `#/layout-best-fit/ses/${SECRET}/443/false`;
  return u.href;
}

beforeAll(async () => {
  meeting = await startMeeting();
  dir = standInDir();
  recordings = join(dir, "recordings");
  ov = new OpenViduStandIn({
    recordingsDir: recordings, dir: join(dir, "meeting"), exec: meeting.netns.exec,
    env: {
      MEETREC_OPENVIDU__JOIN: JSON.stringify(meeting.joinSteps()),
      MEETREC_BACKENDS__OPENVIDU__ALLOWED_REQUEST_ORIGINS: JSON.stringify(meeting.egress.allowedRequestOrigins),
      MEETREC_CAPTURE__PULSE_DIR: join(dir, "pulse"),
      MEETREC_LOG_LEVEL: "debug",
    },
  });
}, 120_000);

afterAll(async () => {
  await ov?.close();
  await meeting?.stop();
  if (dir) {
    killProcessesUnder(dir); // a killed container's sound daemon
    rmSync(dir, { recursive: true, force: true });
  }
});

/** SIGKILLs the processes (by pid) whose command line names `path`: what a killed container left of this test. */
function killProcessesUnder(path: string): void {
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, "utf8").includes(path)) process.kill(Number(name), "SIGKILL");
    } catch { /* gone */ }
  }
}

const folder = (r: OvRecording) => join(recordings, r.id);
const mediaFile = (r: OvRecording) => join(folder(r), `${r.name}.mp4`);

/** The files of the recording's folder that a server-side `ls -A` would show. */
const listing = (r: OvRecording) => readdirSync(folder(r)).sort();

/** Every file under the recordings folder and every line the containers printed are free of the secret. */
function expectNoSecret(): void {
  expect(ov.output()).not.toContain(SECRET);
  const walk = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : [join(d, e.name)]));
  for (const f of walk(recordings)) expect(readFileSync(f).includes(SECRET), `${f} holds the secret`).toBe(false);
}

/** The container's `.recording.{id}` after the stop: RECORDING_JSON's keys and values, but the five the container updates. */
function expectSealedFromJson(r: OvRecording, metadata: Record<string, unknown>, expect5: { status: string; hasAudio: boolean; hasVideo: boolean }): void {
  const start = JSON.parse(recordingJson(r, "stopped")) as Record<string, unknown>;
  expect(Object.keys(metadata).sort()).toEqual(Object.keys(start).sort());
  const { hasAudio, hasVideo, duration, size, status, ...rest } = metadata;
  const { hasAudio: _a, hasVideo: _v, duration: _d, size: _s, status: _t, ...startRest } = start;
  expect(rest).toEqual(startRest);
  expect({ status, hasAudio, hasVideo }).toEqual(expect5);
  return void [duration, size];
}

describe("OpenVidu 2 recording container (COMPOSED)", () => {
  test("started by a non-empty file, stopped by q, the server reads ready: 1024x576@25 with sound, the meeting in every second; no secret anywhere", async () => {
    const r = ov.recording("ses_A", layoutUrl(meeting.viewerUrl), { resolution: "1024x576", frameRate: 25 });
    const launchedAt = Date.now();
    const c = ov.startComposed(r, true);
    await ov.waitForVideoFile(r);
    const startFileAt = Date.now();
    // The start's metadata is RECORDING_JSON exactly, as `echo $RECORDING_JSON >` writes it.
    expect(readFileSync(join(folder(r), `.recording.${r.id}`), "utf8")).toBe(`${recordingJson(r)}\n`);
    await sleep(10_000);
    const stopAt = Date.now();
    const stop = await ov.stopComposed(r, c);
    expect(stop.timedOut, c.output().slice(-3000)).toBe(false);
    expect(stop.exitMs).toBeLessThan(30_000);
    expect((await c.exited).code).toBe(0);
    // What the server reads before it deletes .info and seals .recording:
    const info = JSON.parse(readFileSync(join(folder(r), `${r.id}.info`), "utf8"));
    expect(info.format.filename).toBe(mediaFile(r));
    const view = ov.collect(r);
    expect(view).toMatchObject({ status: "ready", resolution: "1024x576", frameRate: 25, hasAudio: true, hasVideo: true });
    expect(view.size).toBe(statSync(mediaFile(r)).size);
    expect(view.duration).toBeGreaterThanOrEqual((stopAt - startFileAt) / 1000);
    expect(view.duration).toBeLessThanOrEqual((stopAt - launchedAt) / 1000);
    expectSealedFromJson(r, view.metadata, { status: "stopped", hasAudio: true, hasVideo: true });
    expect(view.metadata.duration).toBe(view.duration);
    expect(view.metadata.size).toBe(view.size);
    expect(frameSize(join(folder(r), `${r.id}.jpg`))).toEqual({ width: 480, height: 270 });
    // Only what the official image leaves (DEBUG_MODE: its log too); the segments are gone, all writable by the server's user.
    expect(listing(r)).toEqual([".recording.ses_A", "ses_A-container.log", "ses_A.jpg", "ses_A.mp4"]);
    for (const f of ["", "ses_A.mp4", "ses_A.jpg", ".recording.ses_A"]) expect(statSync(join(folder(r), f)).mode & 0o777, f).toBe(0o777);
    checkMeeting(mediaFile(r), meeting.publishers);
    expectNoSecret();
  });

  test("a stop right after docker run (its q comes before meetrec is up) and one while the layout is joining: each exits in time, nothing but the metadata, sealed failed", async () => {
    for (const [id, afterMs] of [["ses_B", 0], ["ses_C", 4000]] as const) {
      const r = ov.recording(id, layoutUrl(meeting.viewerUrl), { resolution: "1024x576" });
      const c = ov.startComposed(r);
      await sleep(afterMs);
      const stop = await ov.stopComposed(r, c);
      expect(stop.timedOut, `${id}: ${c.output().slice(-2000)}`).toBe(false);
      expect((await c.exited).code).toBe(1);
      const view = ov.collect(r);
      expect(view).toMatchObject({ status: "failed", reason: "no .info" });
      expectSealedFromJson(r, view.metadata, { status: "failed", hasAudio: false, hasVideo: false });
      expect(listing(r)).toEqual([`.recording.${id}`]);
    }
  });

  test("a container killed -9 mid-recording is continued by the next one for the same id: one file with both periods (segments in a bucket set in the folder's .env)", async () => {
    const s3 = await startS3InNetns(meeting, join(dir, "s3"));
    const dotEnv = join(recordings, ".env");
    writeFileSync(dotEnv, [
      "# meetrec's settings beside the HA recorder's (which meetrec ignores)",
      "HA_RECORDING_STORAGE=s3",
      "MEETREC_SEGMENTS__S3__BUCKET=segments",
      `MEETREC_SEGMENTS__S3__ENDPOINT=http://127.0.0.1:${s3.port}`,
      "MEETREC_SEGMENTS__S3__FORCE_PATH_STYLE=true",
      "MEETREC_SEGMENTS__S3__ACCESS_KEY_ID=S3RVER",
      'MEETREC_SEGMENTS__S3__SECRET_ACCESS_KEY="S3RVER"',
      "",
    ].join("\n"));
    const bucketDir = join(dir, "s3", "segments", "recordings", "ses_K");
    try {
      const r = ov.recording("ses_K", layoutUrl(meeting.viewerUrl), { resolution: "1024x576", frameRate: 25 });
      const c1 = ov.startComposed(r);
      await ov.waitForVideoFile(r);
      const firstAt = Date.now();
      await until(() => segmentsIn(join(bucketDir, "p1")) >= 4, 30_000, "period 1's segments in the bucket");
      const old = recordingProcesses(r.id);
      const killedAt = Date.now();
      c1.child.kill("SIGKILL");
      await c1.exited;
      expect(stillRunning(old).length, "capture processes outliving the killed container").toBeGreaterThan(0);

      const c2 = ov.startComposed(r);
      expect(await untilEmpty(() => stillRunning(old), 20_000), "the killed container's capture processes once the next one started").toEqual([]);
      await until(() => segmentsIn(join(bucketDir, "p2")) >= 2, 60_000, "period 2's segments in the bucket");
      const resumedAt = Date.now();
      await sleep(4000);
      const stopAt = Date.now();
      const stop = await ov.stopComposed(r, c2);
      expect(stop.timedOut, c2.output().slice(-3000)).toBe(false);
      const view = ov.collect(r);
      expect(view).toMatchObject({ status: "ready", resolution: "1024x576", frameRate: 25, hasAudio: true });
      // Both periods: what period 1 held until the kill (less the segment it lost), and period 2 to the stop.
      const p1 = (killedAt - firstAt) / 1000;
      const p2 = (stopAt - resumedAt) / 1000;
      expect(view.duration).toBeGreaterThanOrEqual(p1 + p2);
      expect(view.duration).toBeLessThanOrEqual((stopAt - firstAt) / 1000 + 4);
      expect(c2.output()).toContain("continuing in a new period");
      expectSealedFromJson(r, view.metadata, { status: "stopped", hasAudio: true, hasVideo: true });
      checkMeeting(mediaFile(r), meeting.publishers);
      // The bucket's copies are removed with the local ones once the server's files are written.
      expect(segmentsIn(join(bucketDir, "p1")) + segmentsIn(join(bucketDir, "p2"))).toBe(0);
      expect(listing(r)).toEqual([".recording.ses_K", "ses_K.jpg", "ses_K.mp4"]);
      expectNoSecret();
    } finally {
      rmSync(dotEnv, { force: true });
      await s3.stop();
    }
  }, 240_000);
});

describe("OpenVidu 2 recording container (COMPOSED_QUICK_START)", () => {
  let page: SyncPage;
  let auth: Server;
  let qs: OpenViduStandIn;
  let c: Container;
  let url: string;

  beforeAll(async () => {
    page = await startSyncPage();
    // OpenVidu serves its layouts behind basic auth (OPENVIDUAPP:secret): so does this page.
    auth = createServer((req, res) => {
      if (req.headers.authorization !== `Basic ${Buffer.from(`OPENVIDUAPP:${SECRET}`).toString("base64")}`) {
        res.writeHead(401, { "www-authenticate": 'Basic realm="openvidu"' }).end();
        return;
      }
      request(new URL(req.url ?? "/", page.url), (up) => { res.writeHead(up.statusCode ?? 502, up.headers); up.pipe(res); }).end();
    });
    await new Promise<void>((r) => auth.listen(0, "127.0.0.1", r));
    url = layoutUrl(`http://127.0.0.1:${(auth.address() as { port: number }).port}/`);
    mkdirSync(join(dir, "quick"), { recursive: true });
    qs = new OpenViduStandIn({ recordingsDir: recordings, dir: join(dir, "quick"), env: { MEETREC_CAPTURE__PULSE_DIR: join(dir, "pulse-quick"), MEETREC_LOG_LEVEL: "debug" } });
    c = qs.startQuickStartContainer(url, "640x360", 25);
    await until(() => c.output().includes("ready to record"), 60_000, "the quick-start container's browser");
  });

  afterAll(async () => {
    await qs?.close();
    await new Promise((r) => auth?.close(r));
    await page?.close();
  });

  test("waits with the layout open, records at once on --start-recording, .info is there when --stop-recording returns; a second recording in the same container", async () => {
    await sleep(8000); // longer than the capture watchdog's stall limit (3 segments): the waiting page is not taken for hung
    const r1 = qs.recording("ses_Q", url, { resolution: "640x360", frameRate: 25 });
    const requestedAt = Date.now();
    qs.startQuickStartRecording(r1, c);
    const startMs = await qs.waitForVideoFile(r1);
    await sleep(8000);
    const stopAt = Date.now();
    const stopMs = await qs.stopQuickStartRecording(r1, c);
    expect(stopMs, c.output().slice(-3000)).not.toBeNull();
    expect(stopMs!).toBeLessThan(10_000);
    expect(existsSync(join(folder(r1), `${r1.id}.info`))).toBe(true); // the server reads it at once
    const v1 = qs.collect(r1);
    expect(v1).toMatchObject({ status: "ready", resolution: "640x360", frameRate: 25, hasAudio: true });
    expectSealedFromJson(r1, v1.metadata, { status: "stopped", hasAudio: true, hasVideo: true });
    // The page from the start exec to the stop: with the browser waiting, capture began at once.
    const seen = checkPage(mediaFile(r1), { bg: BG, requestedAtMs: requestedAt, endedByMs: Date.now(), stopSentAtMs: stopAt });
    // When the container's process took the start (its log line), and when the file's first page frame was shown.
    const acceptedAt = logTime(c.output(), `recording ${r1.id} started`);
    const firstShownMs = seen.runs[0].wallFromMs - acceptedAt;
    // Measured: ~0.1 s with the waiting browser; ~1.7 s when the session is opened at the start (browser launch, page load).
    expect(firstShownMs, `the first page frame came ${firstShownMs} ms after the container took the start (exec → taken ${acceptedAt - requestedAt} ms, file after ${startMs} ms)`).toBeLessThan(1000);
    expect(frameSize(join(folder(r1), `${r1.id}.jpg`))).toEqual({ width: 480, height: 270 });
    // A second stop returns at once; the container lives on for the session's next recording.
    expect(await qs.stopQuickStartRecording(r1, c)).not.toBeNull();
    expect(c.child.exitCode).toBeNull();

    // The next recording of the session: picture only, an odd size (recorded one pixel smaller, as H.264 needs).
    await until(() => c.output().split("ready to record").length >= 3, 60_000, "the browser opened again for the next recording");
    const r2 = qs.recording("ses_Q", url, { n: 1, resolution: "641x361", frameRate: 25, hasAudio: false });
    qs.startQuickStartRecording(r2, c);
    await qs.waitForVideoFile(r2);
    await sleep(4000);
    const stop2 = await qs.stopQuickStartRecording(r2, c);
    expect(stop2).not.toBeNull();
    const v2 = qs.collect(r2);
    expect(v2).toMatchObject({ status: "ready", resolution: "640x360", frameRate: 25, hasAudio: false, hasVideo: true });
    expect(probe(mediaFile(r2)).audio).toBeUndefined();
    // The page's own colour and moving square, window by window (its flashes skipped, its clock strip left out).
    checkTiles(decodeFrames(mediaFile(r2)), [{ name: "the page", rgb: BG }], { excludeBottomRows: 12, skipFrame: (f) => f.reduce((a, b) => a + b, 0) / f.length > 200 });
    expect(frameSize(join(folder(r2), `${r2.id}.jpg`))).toEqual({ width: 480, height: 270 });
    expect(qs.output()).not.toContain(SECRET);

    c.child.kill("SIGTERM");
    expect((await c.exited).code).toBe(0);
  }, 180_000);
});

/** The time (ms) of the first log line (pino JSON) whose message is `msg`. */
function logTime(output: string, msg: string): number {
  for (const line of output.split("\n")) {
    try {
      const j = JSON.parse(line);
      if (j.msg === msg) return j.time;
    } catch { /* not a log line */ }
  }
  throw new Error(`no log line "${msg}"`);
}

/** Polls `cond` every 200 ms for up to `ms`; throws naming `what`. */
async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(200);
  }
}

/** Media segments s3rver holds in `dir` (it keeps an object as `{name}._S3rver_object`). */
function segmentsIn(dir: string): number {
  try {
    return readdirSync(dir).filter((f) => /^\d{6}\.m4s\._S3rver_object$/.test(f)).length;
  } catch {
    return 0;
  }
}

/** s3rver (bucket `segments`) inside the meeting's namespace, where the containers reach it on its loopback. */
async function startS3InNetns(m: Meeting, s3dir: string): Promise<{ port: number; stop(): Promise<void> }> {
  const argv = m.netns.exec([process.execPath, "--import", "tsx", join(REPO_ROOT, "test/fixtures/s3rver-host.ts"), "--dir", s3dir]);
  const child: ChildProcess = spawn(argv[0], argv.slice(1), { cwd: REPO_ROOT, stdio: ["pipe", "pipe", "inherit"] });
  const port = await new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on("line", (l) => { try { const m2 = JSON.parse(l); if (m2.ready) resolve(m2.port); } catch { /* not ours */ } });
    child.once("exit", (code) => reject(new Error(`s3rver exited (${code})`)));
  });
  return {
    port,
    async stop() {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await Promise.race([exited, sleep(5000)]);
      if (child.exitCode === null) child.kill("SIGKILL");
    },
  };
}
