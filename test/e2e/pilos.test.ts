/**
 * PILOS end to end: recordings of the sync page delivered with `delivery.spool.package: pilos`
 * into a PILOS instance's spool — a local directory (the shared-storage setup) and rsync over
 * SSH to a local sshd behind rrsync (the post-publish script's other setup) — and taken in by
 * the PILOS importer stand-in (test/fixtures/pilos-importer.ts: PILOS's own rules, step by
 * step). The test then checks what PILOS would store and serve: every field of `metadata.xml`,
 * the start and end against the page clock in the file, the link, the player page, and the
 * file itself played with the media checks. (The tar's bytes, refusals and XML escaping:
 * test/unit/pilos.test.ts; the 422 of the API: test/api/delivery.test.ts.)
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, watch, type FSWatcher } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { checkPage } from "../../dev/media-check.js";
import { startSyncPage, type SyncPage } from "../../dev/sync-page.js";
import { freePort, startServer, unixRequest, type TestServer } from "../../dev/server.js";
import { prepareSshd, type Sshd } from "../fixtures/sshd.js";
import { PilosImporter } from "../fixtures/pilos-importer.js";

const BG: [number, number, number] = [0x20, 0x60, 0xc0];
const TERMINAL = ["completed", "failed", "aborted"];
const MEETING = "bf8d59d9-9b80-4666-be2c-4b7e56f5b8c9";
const ROOM = "abc-def-123";
const RSYNC_KEY = "pilos-rsync-key-0123456789abcdef";
/** The allow-list PILOS's documentation gives as its example (RECORDING_DOWNLOAD_ALLOWLIST). */
const DOCS_ALLOWLIST = "^.*\\.(pdf|ogg|mp4|m4v|webm)$";

let page: SyncPage;
let server: TestServer;
let sshd: Sshd;
let dir: string;
let spoolRoot: string;
/**
 * What happened in the local PILOS spool (fs.watch: `rename` = a name appeared or went,
 * `change` = a file was written): no temporary name may end `.tar`, and the tar's own name may
 * never be written to — it must appear complete, by a rename.
 */
const spoolEvents: { type: string; name: string }[] = [];
let watcher: FSWatcher;
/** The PILOS instance whose spool is `spoolRoot/pilos-1` (shared by the tests: its database persists). */
let importer: PilosImporter;

beforeAll(async () => {
  page = await startSyncPage();
  dir = mkdtempSync(join(tmpdir(), "meetrec-pilos-"));
  spoolRoot = join(dir, "spool");
  mkdirSync(join(spoolRoot, "pilos-1"), { recursive: true }); // the instance's spool, mounted by PILOS
  watcher = watch(join(spoolRoot, "pilos-1"), (type, name) => { if (name) spoolEvents.push({ type, name: String(name) }); });
  importer = new PilosImporter({ spool: join(spoolRoot, "pilos-1"), storage: join(dir, "pilos-1"), meetings: { [MEETING]: ROOM }, rooms: [ROOM] });
  const port = await freePort();
  sshd = prepareSshd(port);
  await sshd.start();
  server = await startServer({ egress: { allowedOrigins: [page.origin] }, config: {
    publicUrl: "https://rec.example.com",
    delivery: { retry: { initialDelayMs: 300, maxDelayMs: 1000, factor: 2 }, pollIntervalMs: 100 },
    backends: {
      default: { apiKey: "test-key-0123456789abcdef", delivery: { spool: { path: spoolRoot, subdirFromMetadata: "instance", package: "pilos" } } },
      "pilos-rsync": {
        apiKey: RSYNC_KEY, allowedOrigins: [page.origin],
        delivery: { spool: { path: "root@127.0.0.1:incoming", subdirFromMetadata: "instance", package: "pilos", sshKey: sshd.clientKey, sshPort: port, knownHostsFile: sshd.knownHosts } },
      },
    },
  } });
});

afterAll(async () => {
  watcher?.close();
  await server?.stop();
  await sshd?.stop();
  await page?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The recording's file as the API serves it. */
async function apiFile(id: string): Promise<Buffer> {
  return (await server.api("GET", `/v1/recordings/${id}/file`)).body;
}

/** The child elements' names of a parsed element (simplexml's children), in document order. */
const names = (o: object) => Object.keys(o).filter((k) => k !== "#text");

/**
 * What PILOS made of recording `rec` (its meetrec view): the row, the format, the files it
 * serves, and `metadata.xml` held to the note's §7 field by field. Returns the played file.
 */
function checkImported(importer: PilosImporter, rec: any, meetingName: string): { recordId: string; media: string; xml: any } {
  const startMs = Date.parse(rec.file.startedAt);
  const recordId = `${createHash("sha1").update(rec.id).digest("hex")}-${startMs}`;
  const row = importer.recordings.get(recordId);
  expect(row, `PILOS has recording ${recordId}: ${JSON.stringify([...importer.recordings.keys()])}`).toBeDefined();
  expect(row).toMatchObject({ roomId: ROOM, meetingId: MEETING, description: meetingName });
  expect(row!.start.getTime()).toBe(startMs);
  const link = row!.formats.get("video")!.url;
  expect(link).toBe(`/playback/video/${recordId}/`);
  expect(link.length).toBeLessThanOrEqual(255);

  const formatDir = join(importer.recordingsDisk, recordId, "video");
  expect(readdirSync(formatDir).sort()).toEqual(["index.html", "metadata.xml", "video-0.m4v"]);
  const xml = importer.simplexml(readFileSync(join(formatDir, "metadata.xml"), "utf8")) as any;
  expect(readFileSync(join(formatDir, "metadata.xml"), "utf8")).toMatch(/^<\?xml version="1.0" encoding="UTF-8"\?>\n<recording>/);
  expect(names(xml)).toEqual(["id", "state", "published", "start_time", "end_time", "meta", "playback", "raw_size"]);
  expect(names(xml.meta)).toEqual(["meetingId", "meetingName", "bbb-origin"]);
  expect(names(xml.playback)).toEqual(["format", "link", "duration", "size"]);
  expect(xml).toMatchObject({ id: recordId, state: "published", published: "true", start_time: String(startMs), raw_size: String(rec.bytes) });
  expect(xml.meta).toMatchObject({ meetingId: MEETING, meetingName, "bbb-origin": "PILOS" });
  expect(xml.playback.format).toBe("video");
  expect(xml.playback.link).toBe(`https://rec.example.com/playback/video/${recordId}/`);

  // The player page PILOS serves for the link (its default resource), and the file it plays.
  const pageFile = importer.resource(recordId, "video");
  const src = /<video src="([^"]+)"/.exec(readFileSync(pageFile, "utf8"))?.[1];
  expect(src).toBe("video-0.m4v");
  const media = importer.resource(recordId, "video", src);
  expect(importer.download(recordId, DOCS_ALLOWLIST)).toEqual(["video/video-0.m4v"]);
  expect(Number(xml.playback.size)).toBe(statSync(media).size + statSync(pageFile).size);

  // Duration and end: the file's own, by ffprobe.
  const durationMs = Math.round(Number(execFileSync("ffprobe", ["-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", media], { encoding: "utf8" })) * 1000);
  expect(Math.abs(Number(xml.playback.duration) - durationMs)).toBeLessThanOrEqual(1);
  expect(Number(xml.end_time) - Number(xml.start_time)).toBe(Number(xml.playback.duration));
  expect(row!.end.getTime()).toBe(Number(xml.end_time));
  return { recordId, media, xml };
}

describe("PILOS spool package", () => {
  test("a recording reaches PILOS through its spool: imported into the meeting's room, every field right, the file plays", async () => {
    importer.watch(20); // PILOS every minute; here often, to open any tar as soon as its name appears
    const meetingName = "Physik & <Demo> \"1\" – Übung ✓";
    const requestedAtMs = Date.now();
    const created = (await server.api("POST", "/v1/recordings", {
      // The wait lets the page's sound start (Chromium's audio output takes ~2 s) before capture begins.
      url: page.url, maxDurationSeconds: 6, join: [{ wait: 2500 }], video: { width: 480, height: 270, fps: 15 },
      metadata: { instance: "pilos-1", meetingId: MEETING, meetingName },
    })).json();
    const rec = await server.waitFor(created.id, (r) => TERMINAL.includes(r.status), 90_000);
    const endedByMs = Date.now();
    expect(rec.status, JSON.stringify(rec.error)).toBe("completed");
    for (let i = 0; i < 50 && importer.recordings.size === 0; i++) await new Promise((r) => setTimeout(r, 100));
    await importer.stop();

    const tarName = (id: string) => `${id}-video.tar`;
    const { recordId, media, xml } = checkImported(importer, rec, meetingName);
    // Every job PILOS ran took the tar whole: no extraction failed on a half-written file.
    expect(importer.outcomes).toEqual([{ tar: tarName(recordId), result: "imported" }]);
    expect(readdirSync(join(spoolRoot, "pilos-1"))).toEqual([]); // imported and deleted; no temporary file left
    // No name but the finished tar's ever ended `.tar` in the spool (the temporary name is
    // hidden), and the tar was never written under its own name: it appeared whole.
    // The watch's events arrive on the event loop after the fact: wait for the delete's.
    const tarEvents = () => spoolEvents.filter((e) => e.name === tarName(recordId)).map((e) => e.type);
    for (let i = 0; i < 40 && tarEvents().length < 2; i++) await new Promise((r) => setTimeout(r, 50));
    const names = new Set(spoolEvents.map((e) => e.name));
    for (const n of names) expect(n === tarName(recordId) || (n.startsWith(".") && !n.endsWith(".tar")), n).toBe(true);
    expect(tarEvents()).toEqual(["rename", "rename"]); // renamed in, deleted by PILOS
    expect(spoolEvents.some((e) => e.type === "change" && e.name.startsWith("."))).toBe(true); // (the watch does see writes)
    expect(rec.deliveries.find((d: any) => d.target === "spool").attempts.at(-1)).toMatchObject({ outcome: "ok", message: `written to the spool directory: pilos-1/${tarName(recordId)}` });

    // The file PILOS plays is the recording, and it holds the page: live, sounding, in step.
    expect(Buffer.compare(readFileSync(media), await apiFile(rec.id))).toBe(0);
    const report = checkPage(media, { bg: BG, requestedAtMs, endedByMs, minShownS: 4 });
    // start_time is when the file's first moment was captured: the page clock in the file says
    // so (the clock shows 100 ms units and the grab lags the page by up to a frame or two).
    const first = report.runs[0];
    const clockAtZero = first.wallFromMs - first.from * 1000;
    expect(Number(xml.start_time) - clockAtZero).toBeGreaterThanOrEqual(-150);
    expect(Number(xml.start_time) - clockAtZero).toBeLessThanOrEqual(350);
    const last = report.runs.at(-1)!;
    const clockAtEnd = last.wallToMs + (report.probe.durationS - last.to) * 1000;
    expect(Math.abs(Number(xml.end_time) - clockAtEnd)).toBeLessThanOrEqual(400);
  });

  test("a redelivery puts the same tar under the same name; PILOS keeps one recording", async () => {
    const id = (await server.api("GET", "/v1/recordings?status=completed")).json().recordings[0].id;
    const [before] = importer.recordings.values();
    expect((await server.api("POST", `/v1/recordings/${id}/redeliver`)).status).toBe(202);
    const rec = await server.waitFor(id, (r) => r.deliveries.filter((d: any) => d.target === "spool").every((d: any) => d.status === "succeeded" && d.attemptCount >= 2), 30_000);
    const files = readdirSync(join(spoolRoot, "pilos-1"));
    expect(files).toEqual([`${createHash("sha1").update(id).digest("hex")}-${Date.parse(rec.file.startedAt)}-video.tar`]);
    expect(rec.deliveries.filter((d: any) => d.target === "spool")).toHaveLength(1);
    expect(await importer.run()).toEqual([{ tar: files[0], result: "imported" }]);
    expect([...importer.recordings.values()]).toEqual([before]); // the same row: re-imported, not duplicated
  });

  test("a recording without metadata.meetingId is refused at POST with 422, and nothing is recorded", async () => {
    const before = (await server.api("GET", "/v1/recordings")).json().recordings.length;
    const res = await server.api("POST", "/v1/recordings", { url: page.url, maxDurationSeconds: 3, metadata: { instance: "pilos-1", meetingName: "No id" } });
    expect(res.status).toBe(422);
    expect(res.json()).toMatchObject({ code: "validation_failed", errors: [{ field: "metadata.meetingId" }] });
    expect((await server.api("GET", "/v1/recordings")).json().recordings.length).toBe(before);
  });

  test("over rsync + SSH into a PILOS spool behind rrsync: the same tar, imported on the far side", async () => {
    const api = (method: string, path: string, body?: unknown) => unixRequest(server.socket, method, path, { body, headers: { authorization: `Bearer ${RSYNC_KEY}` } });
    const requestedAtMs = Date.now();
    const { id } = (await api("POST", "/v1/recordings", {
      url: page.url, maxDurationSeconds: 5, join: [{ wait: 2500 }], video: { width: 480, height: 270, fps: 15 },
      metadata: { instance: "pilos-2", meetingId: MEETING, meetingName: "Über rsync" },
    })).json();
    let rec: any;
    for (let i = 0; i < 300; i++) {
      rec = (await api("GET", `/v1/recordings/${id}`)).json();
      if (TERMINAL.includes(rec.status)) break;
      await new Promise((r) => setTimeout(r, 300));
    }
    const endedByMs = Date.now();
    expect(rec.status, JSON.stringify(rec.error)).toBe("completed");
    const spool = join(sshd.root, "incoming", "pilos-2");
    const name = `${createHash("sha1").update(id).digest("hex")}-${Date.parse(rec.file.startedAt)}-video.tar`;
    expect(readdirSync(spool)).toEqual([name]); // rsync's temporary name is gone
    expect(rec.deliveries.find((d: any) => d.target === "spool").attempts.at(-1)).toMatchObject({ outcome: "ok", message: `written to the spool on 127.0.0.1: pilos-2/${name}` });
    const importer = new PilosImporter({ spool, storage: join(dir, "pilos-2"), meetings: { [MEETING]: ROOM }, rooms: [ROOM] });
    expect(await importer.run()).toEqual([{ tar: name, result: "imported" }]);
    const { media } = checkImported(importer, rec, "Über rsync");
    checkPage(media, { bg: BG, requestedAtMs, endedByMs, minShownS: 3.5 });
    expect(existsSync(join(sshd.root, "..", "incoming"))).toBe(false); // rrsync kept it inside its root
  });
});
