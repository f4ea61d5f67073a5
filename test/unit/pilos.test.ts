/**
 * The PILOS spool package without recording: record id, `metadata.xml` (escaping, fields),
 * what a recording needs at `POST`, and the tar itself written by the spool into a directory
 * and taken in by the PILOS importer stand-in (test/fixtures/pilos-importer.ts) — which is
 * shown here to refuse what PILOS refuses (a half-written tar, malformed XML, an unknown
 * meeting, a link over 255 characters). The recorded end to end run: test/e2e/pilos.test.ts.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Parser } from "tar";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { parseConfig, type SpoolTarget } from "../../src/config/index.js";
import { deliverToSpool } from "../../src/delivery/index.js";
import { deliveryTargets } from "../../src/hosts/targets.js";
import { metadataXml, pilosRecordId, pilosSpoolPackage, type PilosMetadata } from "../../src/platforms/pilos/index.js";
import type { Recording } from "../../src/store/index.js";
import { PilosImporter } from "../fixtures/pilos-importer.js";

const MEETING = "bf8d59d9-9b80-4666-be2c-4b7e56f5b8c9";
const ROOM = "abc-def-123";

/** Every header of a tar file, in order: type, path, size, mode, and the ustar magic. */
async function tarHeaders(file: string): Promise<{ type: string; path: string; size: number; mode: number; magic: string }[]> {
  const out: { type: string; path: string; size: number; mode: number; magic: string }[] = [];
  const buf = readFileSync(file);
  await new Promise<void>((resolve, reject) => {
    const p = new Parser({ strict: true, onReadEntry: (e) => { out.push({ type: e.type, path: e.path, size: e.size, mode: e.mode ?? 0, magic: "" }); e.resume(); } });
    p.on("error", reject);
    p.on("end", () => resolve());
    p.end(buf);
  });
  // The ustar magic of each header block ("ustar\0" "00": POSIX.1-1988), read where the entries are.
  let off = 0;
  for (const h of out) {
    out[out.indexOf(h)].magic = buf.subarray(off + 257, off + 265).toString("latin1");
    off += 512 + Math.ceil(h.size / 512) * 512;
  }
  return out;
}

describe("record id and metadata.xml", () => {
  test("the record id is sha1(meetrec id)-start ms: [0-9a-f-] only, stable", () => {
    const id = "0b7c0c7e-1d7e-4a39-9d2f-5d1c0e3f8a11";
    const r = pilosRecordId(id, 1712758751753);
    expect(r).toBe(`${createHash("sha1").update(id).digest("hex")}-1712758751753`);
    expect(r).toMatch(/^[0-9a-f]{40}-\d{13}$/);
    expect(pilosRecordId(id, 1712758751753)).toBe(r);
  });

  test("a meeting name with markup and control characters is escaped or dropped; PILOS reads back every field", () => {
    const m: PilosMetadata = {
      recordId: pilosRecordId("x", 1712758751753), startMs: 1712758751753, durationMs: 98401, meetingId: MEETING,
      meetingName: "Tom & Jerry <b>\"live\"</b> 'n' ]]> \u0001\u0007bell\u001b \uD800 ok ✓ 😀",
      link: `https://rec.example.com/playback/video/${pilosRecordId("x", 1712758751753)}/`, sizeBytes: 1234, rawSizeBytes: 5678,
    };
    const xml = metadataXml(m);
    expect(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<recording>')).toBe(true);
    expect(xml).toContain("Tom &amp; Jerry &lt;b&gt;");
    expect(xml).not.toMatch(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/);
    const importer = new PilosImporter({ spool: "/nonexistent", storage: "/nonexistent", meetings: {}, rooms: [] });
    const doc = importer.simplexml(xml) as any;
    expect(doc.meta.meetingName).toBe("Tom & Jerry <b>\"live\"</b> 'n' ]]> bell  ok ✓ 😀");
    expect(doc.id).toBe(m.recordId);
    expect(doc.start_time).toBe("1712758751753");
    expect(doc.end_time).toBe(String(1712758751753 + 98401));
    expect(doc.meta.meetingId).toBe(MEETING);
    expect(doc.meta["bbb-origin"]).toBe("PILOS");
    expect(doc.playback).toMatchObject({ format: "video", link: m.link, duration: "98401", size: "1234" });
    expect(doc.raw_size).toBe("5678");
    expect(doc.state).toBe("published");
    expect(doc.published).toBe("true");
  });
});

describe("what a recording delivered to a PILOS spool needs at POST", () => {
  const config = parseConfig({
    backends: {
      pilos: { apiKey: "pilos-backend-key-0123456789", delivery: { spool: { path: "/spool", subdirFromMetadata: "instance", package: "pilos" } } },
      files: { apiKey: "files-backend-key-0123456789", delivery: { spool: { path: "/spool" } } },
    },
  });
  const targets = deliveryTargets(config);
  const rec = (backend: string, metadata: Record<string, unknown>, targetsWanted?: ("spool" | "email")[]) => ({
    backend, metadata,
    options: { url: "https://m.example.com/", join: [], mode: "video" as const, browser: "chromium" as const, video: { width: 640, height: 360, fps: 10, bitrateKbps: 500 }, maxDurationSeconds: 60, ...(targetsWanted ? { delivery: { targets: targetsWanted } } : {}) },
  });
  const fields = (r: ReturnType<typeof rec>) => targets.inputProblems(r).map((p) => p.field);

  test("metadata.meetingId: a string of 1–255 characters without control characters", () => {
    expect(config.backends.files.delivery.spool?.package).toBe("files"); // the default
    expect(fields(rec("pilos", { instance: "pilos-1", meetingId: MEETING }))).toEqual([]);
    expect(fields(rec("pilos", { instance: "pilos-1", meetingId: ROOM, meetingName: "any & every <name>" }))).toEqual([]);
    for (const bad of [undefined, "", 42, true, null, "x".repeat(256), "a\u0000b", "tab\there", "\uD800"]) {
      expect(fields(rec("pilos", { instance: "pilos-1", ...(bad === undefined ? {} : { meetingId: bad }) })), String(bad)).toEqual(["metadata.meetingId"]);
    }
    expect(targets.inputProblems(rec("pilos", { instance: "pilos-1" }))[0].message).toMatch(/metadata\.meetingId must name the PILOS meeting .* got nothing: backend pilos delivers to a PILOS spool/);
    expect(fields(rec("pilos", {}))).toEqual(["metadata.instance", "metadata.meetingId"]);
  });

  test("only where the recording goes to a PILOS spool", () => {
    expect(fields(rec("files", {}))).toEqual([]);
    expect(fields(rec("pilos", {}, ["email"]))).toEqual([]);
  });
});

describe("the tar in the spool, as PILOS's importer takes it", () => {
  let dir: string;
  let file: string;
  let spool: string;
  const config = parseConfig({ publicUrl: "https://rec.example.com/meetrec" });
  const target: SpoolTarget = { path: "", subdirFromMetadata: "instance", sshPort: 22, package: "pilos" };
  const startedAt = "2026-03-01T09:15:42.123Z";
  const recording = (metadata: Record<string, unknown>, id = "0b7c0c7e-1d7e-4a39-9d2f-5d1c0e3f8a11") => ({
    id, backend: "pilos", metadata, startedAt: "2026-03-01T09:15:40.000Z", createdAt: "2026-03-01T09:15:39.000Z", bytes: 424242,
    file: { name: "recording.mp4", bytes: statSync(file).size, durationSeconds: 2.04, startedAt, streams: [] },
  }) as unknown as Recording;
  const deliver = (rec: Recording) => deliverToSpool({ ...target, path: spool }, rec, pilosSpoolPackage.outputs(rec, file, { config, describe: () => ({}) }));

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "meetrec-pilos-unit-"));
    spool = join(dir, "spool");
    file = join(dir, "recording.mp4");
    execFileSync("ffmpeg", ["-v", "error", "-f", "lavfi", "-i", "testsrc2=s=320x240:r=10:d=2", "-f", "lavfi", "-i", "sine=f=500:d=2", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest", "-movflags", "+faststart", file]);
    chmodSync(file, 0o600); // the tar says 0644 whatever the file's own mode (PILOS's web server must read it)
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("one plain ustar <recordId>-video.tar, renamed into place; PILOS imports it into the meeting's room", async () => {
    const rec = recording({ instance: "pilos-1", meetingId: MEETING, meetingName: "Demo & <Meeting>" });
    const startMs = Date.parse(startedAt);
    const recordId = pilosRecordId(rec.id, startMs);
    const r = await deliver(rec);
    const name = `${recordId}-video.tar`;
    expect(r.shown).toBe(`written to the spool directory: pilos-1/${name}`);
    expect(readdirSync(join(spool, "pilos-1"))).toEqual([name]); // no temporary name left
    const tarFile = join(spool, "pilos-1", name);
    const headers = await tarHeaders(tarFile);
    expect(headers.map((h) => `${h.type} ${h.path} ${h.mode.toString(8)}`)).toEqual([
      "Directory video/ 755", `Directory video/${recordId}/ 755`,
      `File video/${recordId}/metadata.xml 644`, `File video/${recordId}/index.html 644`, `File video/${recordId}/video-0.m4v 644`,
    ]);
    expect(headers.every((h) => h.magic === "ustar\u000000")).toBe(true); // POSIX ustar, no pax or GNU long-name members
    expect(headers.at(-1)!.size).toBe(statSync(file).size);
    expect(readFileSync(tarFile).subarray(0, 2).toString("hex")).not.toBe("1f8b"); // not gzip

    const importer = new PilosImporter({ spool: join(spool, "pilos-1"), storage: join(dir, "pilos"), meetings: { [MEETING]: ROOM }, rooms: [ROOM] });
    expect(await importer.run()).toEqual([{ tar: name, result: "imported" }]);
    expect(readdirSync(join(spool, "pilos-1"))).toEqual([]); // PILOS deletes the tar
    const row = importer.recordings.get(recordId)!;
    expect(row).toMatchObject({ id: recordId, roomId: ROOM, meetingId: MEETING, description: "Demo & <Meeting>" });
    expect(row.start.getTime()).toBe(startMs);
    expect(row.end.getTime()).toBe(startMs + 2040);
    expect([...row.formats]).toEqual([["video", { url: `/playback/video/${recordId}/` }]]);
    const page = importer.resource(recordId, "video");
    expect(page.endsWith(join(recordId, "video", "index.html"))).toBe(true);
    const src = /<video src="([^"]+)"/.exec(readFileSync(page, "utf8"))![1];
    expect(src).toBe("video-0.m4v");
    expect(Buffer.compare(readFileSync(importer.resource(recordId, "video", src)), readFileSync(file))).toBe(0);
    expect(readFileSync(page, "utf8")).toContain("<title>Demo &#38; &#60;Meeting&#62;</title>");
    expect(importer.download(recordId, "^.*\\.(pdf|ogg|mp4|m4v|webm)$")).toEqual(["video/video-0.m4v"]); // PILOS docs' allow-list example
    const xml = importer.simplexml(readFileSync(join(importer.recordingsDisk, recordId, "video", "metadata.xml"), "utf8")) as any;
    expect(xml.playback.size).toBe(String(statSync(file).size + statSync(page).size));
    expect(xml.raw_size).toBe("424242");
    expect(xml.playback.link).toBe(`https://rec.example.com/playback/video/${recordId}/`);
  });

  test("a redelivery overwrites the same name with the same bytes, and the record id stays", async () => {
    const rec = recording({ instance: "again", meetingId: MEETING, meetingName: "Again" });
    await deliver(rec);
    const [name] = readdirSync(join(spool, "again"));
    const first = readFileSync(join(spool, "again", name));
    await deliver(rec);
    expect(readdirSync(join(spool, "again"))).toEqual([name]);
    expect(Buffer.compare(readFileSync(join(spool, "again", name)), first)).toBe(0);
  });

  test("a recording without a meeting name is titled by its start; without file.startedAt its start is startedAt", async () => {
    const rec = recording({ instance: "untitled", meetingId: ROOM });
    delete (rec.file as { startedAt?: string }).startedAt;
    await deliver(rec);
    const importer = new PilosImporter({ spool: join(spool, "untitled"), storage: join(dir, "pilos-untitled"), meetings: {}, rooms: [ROOM] });
    expect(await importer.run()).toMatchObject([{ result: "imported" }]);
    const row = [...importer.recordings.values()][0];
    expect(row).toMatchObject({ id: pilosRecordId(rec.id, Date.parse(rec.startedAt!)), roomId: ROOM, meetingId: null, description: "Recording 2026-03-01 09:15 UTC" });
  });

  test("the importer refuses what PILOS refuses: a half-written tar and malformed XML are retried, an unknown meeting goes to failed/, a long link is retried", async () => {
    const own = join(dir, "refusals");
    mkdirSync(own);
    await deliverToSpool({ ...target, path: own }, recording({ instance: "x", meetingId: MEETING }), pilosSpoolPackage.outputs(recording({ instance: "x", meetingId: MEETING }), file, { config, describe: () => ({}) }));
    const [name] = readdirSync(join(own, "x"));
    const whole = readFileSync(join(own, "x", name));
    const importer = new PilosImporter({ spool: join(own, "x"), storage: join(own, "pilos"), meetings: { [MEETING]: ROOM }, rooms: [] });

    truncateSync(join(own, "x", name), Math.floor(whole.length / 2));
    expect(await importer.run()).toMatchObject([{ tar: name, result: "retry", error: expect.stringMatching(/TAR_BAD_ARCHIVE|Truncated/i) }]);
    expect(existsSync(join(own, "x", name))).toBe(true); // kept for the next try
    expect(importer.recordings.size).toBe(0);

    const xmlAt = whole.indexOf("<meetingName>");
    const broken = Buffer.from(whole);
    broken.write("<meetingName>&<", xmlAt, "latin1"); // what an unescaped name would look like
    writeFileSync(join(own, "x", name), broken);
    expect(await importer.run()).toMatchObject([{ result: "retry", error: expect.stringContaining("simplexml_load_string") }]);

    const unknown = new PilosImporter({ spool: join(own, "x"), storage: join(own, "pilos2"), meetings: {}, rooms: [] });
    writeFileSync(join(own, "x", name), whole);
    expect(await unknown.run()).toMatchObject([{ result: "failed" }]);
    expect(readdirSync(join(own, "x", "failed"))).toEqual([name]);
    expect(await unknown.run()).toEqual([]); // failed/ is not looked at

    const xml = importer.simplexml(metadataXml({ recordId: "r-1", startMs: 1, durationMs: 1, meetingId: MEETING, meetingName: "", link: `https://h/${"x".repeat(250)}/r-1/`, sizeBytes: 0, rawSizeBytes: 0 }));
    expect(() => importer.createFromRecordingXML(xml)).toThrow(/varchar\(255\)/);
  });
});
