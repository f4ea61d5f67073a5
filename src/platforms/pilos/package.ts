/**
 * The PILOS spool package (`delivery.spool.package: pilos`): each recording becomes one
 * uncompressed POSIX tar in BigBlueButton's `video` playback format, the shape PILOS's
 * `import:recordings` takes from its `recordings-spool` directory
 * (`shared/protocols/pilos-bbb-import.md` §7; PILOS `app/Jobs/ProcessRecording.php`,
 * `app/Models/RecordingFormat.php`, `bigbluebutton/pilos_post_publish.rb` @df4945e):
 *
 * ```
 * <recordId>-video.tar
 *   video/<recordId>/metadata.xml   what PILOS reads (createFromRecordingXML)
 *   video/<recordId>/index.html     a page with a <video> of the file (PILOS's default resource)
 *   video/<recordId>/video-0.m4v    the finished MP4 (audio-only recordings: video-0.mp4)
 * ```
 */
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { extname, join } from "node:path";
import { XMLBuilder } from "fast-xml-parser";
import { create as createTar } from "tar";
import { baseUrl } from "../../config/index.js";
import type { DeliveryInputProblem, SpoolPackage } from "../../delivery/index.js";
import type { Recording } from "../../store/index.js";

/** The BigBlueButton playback format the package carries (never `presentation`: PILOS would open BBB's player). */
export const PILOS_FORMAT = "video";

/** Metadata keys the package reads: the PILOS meeting (or room) id, required; the recording's title, optional. */
export const PILOS_METADATA = { meetingId: "meetingId", meetingName: "meetingName" } as const;

/** Longest `meetingId`: PILOS's `meetings.id` / `rooms.id` columns are `varchar(255)`. */
const MAX_ID_CHARS = 255;

/** Characters XML 1.0 cannot carry, even escaped (§2.2 `Char`): C0 controls but tab/LF/CR, lone surrogates, U+FFFE/U+FFFF. */
const NOT_XML = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

/**
 * The BigBlueButton-style record id: lowercase hex SHA-1 of the meetrec recording id, `-`, the
 * start in ms since the epoch (BBB's `<sha1>-<start ms>`, note §5/§7). Only `[0-9a-f-]`: PILOS
 * uses it as a directory name and a URL segment. Stable across redeliveries (both parts are).
 */
export function pilosRecordId(recordingId: string, startMs: number): string {
  return `${createHash("sha1").update(recordingId).digest("hex")}-${startMs}`;
}

/**
 * When the recording starts, ms since the epoch: the wall-clock time of its file's time 0
 * (`file.startedAt`, its first captured frame or sound); for a file finalized before meetrec
 * kept that, when the recording began starting (`startedAt`, seconds early), else its creation.
 */
export function recordingStartMs(rec: Pick<Recording, "file" | "startedAt" | "createdAt">): number {
  return Date.parse(rec.file?.startedAt ?? rec.startedAt ?? rec.createdAt);
}

/**
 * What the package needs from a recording's metadata: `meetingId`, the PILOS `Meeting.id` (or,
 * Greenlight's fallback, `Room.id`) the recording belongs to — without it PILOS fails the tar
 * at once (`createFromRecordingXML` returns null → `failed/`). A string of 1–255 characters
 * without control characters. `meetingName` is optional (any value; characters XML cannot
 * carry are dropped when it is written).
 */
export function pilosInputProblems(rec: { backend: string; metadata: Record<string, unknown> }): DeliveryInputProblem[] {
  const key = PILOS_METADATA.meetingId;
  const v = rec.metadata[key];
  if (typeof v === "string" && v.length > 0 && v.length <= MAX_ID_CHARS && !/[\p{Cc}]/u.test(v) && !v.match(NOT_XML)) return [];
  const got = v === undefined ? "nothing" : JSON.stringify(v).slice(0, 80);
  return [{
    field: `metadata.${key}`,
    message: `metadata.${key} must name the PILOS meeting (or room) the recording belongs to — a string of 1–${MAX_ID_CHARS} characters without control characters — got ${got}: backend ${rec.backend} delivers to a PILOS spool`,
  }];
}

/** The fields of `metadata.xml`, as PILOS and BigBlueButton name them (note §7). */
export interface PilosMetadata {
  recordId: string;
  /** ms since the epoch. */
  startMs: number;
  /** The file's duration, ms. */
  durationMs: number;
  meetingId: string;
  meetingName: string;
  /** `playback/link`: `{origin}/playback/video/{recordId}/`. */
  link: string;
  /** `playback/size`: bytes of the format's files other than `metadata.xml` (which holds the number). */
  sizeBytes: number;
  /** `raw_size`: bytes of the recording's media segments. */
  rawSizeBytes: number;
}

const builder = new XMLBuilder({ format: true, indentBy: "  ", processEntities: true, suppressEmptyNode: false });

/**
 * `metadata.xml` (UTF-8, root `<recording>`), built by a serializer: `&`, `<`, `>` and quotes
 * escaped, characters XML 1.0 cannot carry dropped (PILOS's `simplexml_load_string` turns
 * malformed XML into an hour of retries, then `failed/`: note §8). PILOS reads `id`,
 * `start_time`, `end_time` (integer ms), `meta/meetingId`, `meta/meetingName`,
 * `playback/format` and `playback/link`; the rest is BigBlueButton's, for parity.
 */
export function metadataXml(m: PilosMetadata): string {
  const text = (s: string) => s.replace(NOT_XML, "");
  return `<?xml version="1.0" encoding="UTF-8"?>\n${builder.build({
    recording: {
      id: m.recordId,
      state: "published",
      published: "true",
      start_time: String(m.startMs),
      end_time: String(m.startMs + m.durationMs),
      meta: { meetingId: text(m.meetingId), meetingName: text(m.meetingName), "bbb-origin": "PILOS" },
      playback: { format: PILOS_FORMAT, link: m.link, duration: String(m.durationMs), size: String(m.sizeBytes) },
      raw_size: String(m.rawSizeBytes),
    },
  }) as string}`;
}

/** The player page PILOS serves for the format's link (its default resource): the file in a `<video>` element. */
export function indexHtml(title: string, media: string): string {
  const esc = (s: string) => s.replace(NOT_XML, "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  return `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${esc(title)}</title></head>
<body style="margin:0;background:#000">
<video src="${esc(media)}" controls preload="metadata" style="display:block;width:100%;height:100vh"></video>
</body>
</html>
`;
}

/** Name of the recording inside the format directory: BBB's `video-0.m4v`; an audio-only file (M4A) `video-0.mp4`. */
export function mediaName(file: string): string {
  return extname(file).toLowerCase() === ".m4a" ? "video-0.mp4" : "video-0.m4v";
}

/**
 * Writes the package's tar for `rec` to `dest`: a POSIX (ustar) tar without compression or pax
 * headers, members `video/`, `video/<recordId>/` and its three files in a fixed order, modes
 * 0644/0755 whatever they are on disk, no owners, the files' mtime the recording's end (the
 * same bytes at every attempt).
 * @throws Error when a file cannot be read or written.
 */
async function writeTar(dest: string, file: string, recordId: string, meta: Omit<PilosMetadata, "recordId" | "sizeBytes">): Promise<void> {
  const stage = await mkdtemp(join(tmpdir(), "meetrec-pilos-"));
  try {
    const rel = `${PILOS_FORMAT}/${recordId}`;
    await mkdir(join(stage, rel), { recursive: true });
    const media = mediaName(file);
    const html = indexHtml(meta.meetingName, media);
    await writeFile(join(stage, rel, "index.html"), html, { mode: 0o644 });
    await symlink(file, join(stage, rel, media)); // followed by tar: the file is read once, never copied here
    const sizeBytes = (await stat(file)).size + Buffer.byteLength(html);
    await writeFile(join(stage, rel, "metadata.xml"), metadataXml({ ...meta, recordId, sizeBytes }), { mode: 0o644 });
    await createTar({
      file: dest, cwd: stage, portable: true, follow: true, noPax: true, noDirRecurse: true,
      mtime: new Date(Math.floor((meta.startMs + meta.durationMs) / 1000) * 1000),
      // Readable by whoever serves them (PILOS's PHP and nginx), whatever the umask or the file's own mode.
      onWriteEntry: (e) => { e.stat!.mode = (e.stat!.mode & ~0o7777) | (e.type === "Directory" ? 0o755 : 0o644); },
    }, [`${PILOS_FORMAT}/`, `${rel}/`, `${rel}/metadata.xml`, `${rel}/index.html`, `${rel}/${media}`]);
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
}

/**
 * The `pilos` spool package: one output, `<recordId>-video.tar` (see the module doc). Needs
 * `metadata.meetingId` ({@link pilosInputProblems}); the title is `metadata.meetingName`, else
 * `Recording YYYY-MM-DD HH:MM UTC` of its start.
 */
export const pilosSpoolPackage: SpoolPackage = {
  inputProblems: pilosInputProblems,
  outputs(rec, file, ctx) {
    const bad = pilosInputProblems(rec);
    if (bad.length) throw new Error(bad[0].message);
    if (!rec.file) throw new Error(`recording ${rec.id} has no file`);
    const startMs = recordingStartMs(rec);
    const recordId = pilosRecordId(rec.id, startMs);
    const name = rec.metadata[PILOS_METADATA.meetingName];
    const meta = {
      startMs,
      durationMs: Math.round(rec.file.durationSeconds * 1000),
      meetingId: rec.metadata[PILOS_METADATA.meetingId] as string,
      meetingName: name === undefined || name === null || name === "" ? `Recording ${new Date(startMs).toISOString().slice(0, 16).replace("T", " ")} UTC` : String(name),
      // PILOS keeps the path only (its host is dropped) and serves what follows `<recordId>/`: index.html.
      link: `${new URL(baseUrl(ctx.config)).origin}/playback/${PILOS_FORMAT}/${recordId}/`,
      rawSizeBytes: rec.bytes,
    };
    return [{ name: `${recordId}-${PILOS_FORMAT}.tar`, write: (path) => writeTar(path, file, recordId, meta) }];
  },
};
