/**
 * The files openvidu-server reads from a recording's folder `{recordingsDir}/{id}/`
 * (shared/protocols/openvidu-recording.md §2 and §4; OpenVidu `v2.32.2`
 * `openvidu-server/docker/openvidu-recording/scripts/composed.sh` writes them,
 * `recording/service/ComposedRecordingService.java` and `RecordingManager.java` read them):
 *
 * - `.recording.{id}`: the recording as JSON — `RECORDING_JSON` at the start; after the stop
 *   only `hasAudio`, `hasVideo`, `duration`, `size` and `status` change (temp file + rename; the
 *   temp name does not start with `.recording.`, which the server would list as a recording);
 * - `{name}.mp4`: the media; non-empty = "started" for the server's 30 s check;
 * - `{id}.info`: `ffprobe -v quiet -print_format json -show_format -show_streams` of the media,
 *   read (and deleted) by the server to decide `ready` or `failed`;
 * - `{id}.jpg`: a 480 px wide frame from the middle (written last: the quick start's "done").
 *
 * Everything is made readable and writable for all (`chmod 777`, as the official scripts do):
 * the server runs as another user and overwrites and deletes these files.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmod, mkdir, readFile, readdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { atomicWrite } from "../../util/durable.js";
import { MeetrecError, errorMessage } from "../../util/errors.js";

const run = promisify(execFile);

/** The server's statuses after which the container has nothing left to do (`Recording.Status`). */
const SEALED = new Set(["ready", "failed"]);

/** What the stop leaves in `.recording.{id}` (composed.sh: the five keys the container changes). */
export interface SealedFields {
  hasAudio: boolean;
  hasVideo: boolean;
  /** s */
  duration: number;
  /** bytes */
  size: number;
  /** `stopped` with a stream, else `failed`. */
  status: "stopped" | "failed";
}

/** What `.info` says about the media, read as `RecordingInfoUtils` reads it. */
export interface InfoSummary {
  hasAudio: boolean;
  hasVideo: boolean;
  durationSeconds: number;
  bytes: number;
}

/** One recording's folder on the recordings bind mount. */
export class RecordingFolder {
  /** `{recordingsDir}/{id}`. */
  readonly dir: string;

  constructor(readonly recordingsDir: string, readonly id: string, readonly name: string) {
    this.dir = join(recordingsDir, id);
  }

  /** `.recording.{id}`. */
  get metadataFile(): string {
    return join(this.dir, `.recording.${this.id}`);
  }

  /** `{name}.mp4` (the server hard-codes `.mp4`). */
  get mediaFile(): string {
    return join(this.dir, `${this.name}.mp4`);
  }

  /** `{id}.info`. */
  get infoFile(): string {
    return join(this.dir, `${this.id}.info`);
  }

  /** `{id}.jpg`. */
  get thumbnailFile(): string {
    return join(this.dir, `${this.id}.jpg`);
  }

  /** Creates the folder (mode 777, as composed.sh). */
  async create(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await chmod(this.dir, 0o777);
  }

  /**
   * Whether this recording is over for the server: its thumbnail exists (the container's last
   * file) or the server sealed `.recording.{id}` as `ready`/`failed`. A container started again
   * for it then records nothing (it would replace a finished file).
   */
  async finished(): Promise<boolean> {
    if (await exists(this.thumbnailFile)) return true;
    try {
      const status = (JSON.parse(await readFile(this.metadataFile, "utf8")) as { status?: unknown }).status;
      return typeof status === "string" && SEALED.has(status);
    } catch {
      return false;
    }
  }

  /**
   * Writes `RECORDING_JSON` as `.recording.{id}` (composed.sh: `echo $RECORDING_JSON >`) unless
   * the file exists: a container continuing the recording keeps what the server wrote since.
   */
  async writeMetadataIfAbsent(recordingJson: string): Promise<void> {
    if (await exists(this.metadataFile)) return;
    await atomicWrite(this.metadataFile, `${recordingJson}\n`, { tmpName: `.${this.id}.${randomBytes(8).toString("hex")}.json` });
  }

  /** Whether `{name}.mp4` exists with content (the server's start check, §2). */
  async hasMedia(): Promise<boolean> {
    try {
      const st = await stat(this.mediaFile);
      return st.isFile() && st.size > 0;
    } catch {
      return false;
    }
  }

  /**
   * Writes `{name}.mp4` as the first durable media: `parts` (an init segment and the first
   * media segment) joined, a playable fragmented MP4 of the first seconds — it passes the
   * server's start check and is replaced by the whole file at the stop.
   */
  async writeStartFile(parts: string[]): Promise<void> {
    const data = Buffer.concat(await Promise.all(parts.map((p) => readFile(p))));
    await atomicWrite(this.mediaFile, data, { tmpName: `.${this.name}.mp4.partial` });
  }

  /** Moves the finished file `path` (on the same filesystem) to `{name}.mp4`, replacing the start file. */
  async publish(path: string): Promise<void> {
    await rename(path, this.mediaFile);
  }

  /**
   * Writes `{id}.info`: ffprobe's JSON of `{name}.mp4`, the exact command of composed.sh.
   * @throws MeetrecError `finalize_failed` when ffprobe fails.
   */
  async writeInfo(ffprobePath: string): Promise<InfoSummary> {
    let stdout: string;
    try {
      ({ stdout } = await run(ffprobePath, ["-v", "quiet", "-print_format", "json", "-show_format", "-show_streams", this.mediaFile], { maxBuffer: 16 << 20 }));
    } catch (err) {
      throw new MeetrecError("finalize_failed", `ffprobe cannot read ${this.name}.mp4 for ${this.id}.info: ${errorMessage(err).split("\n")[0]}`, { cause: err });
    }
    await atomicWrite(this.infoFile, stdout, { tmpName: `.${this.id}.info.partial` });
    return readInfo(stdout);
  }

  /**
   * Updates `.recording.{id}` after the stop: the server's current content (it rewrote the file
   * as `stopped` when it asked to stop) with `fields` set and every other key kept; the
   * start's `RECORDING_JSON` when the file is gone or unreadable.
   */
  async seal(fields: SealedFields, recordingJson: string): Promise<void> {
    let current: Record<string, unknown>;
    try {
      current = JSON.parse(await readFile(this.metadataFile, "utf8")) as Record<string, unknown>;
    } catch {
      current = JSON.parse(recordingJson) as Record<string, unknown>;
    }
    const next = { ...current, ...fields };
    await atomicWrite(this.metadataFile, `${JSON.stringify(next)}\n`, { tmpName: `.${this.id}.${randomBytes(8).toString("hex")}.json` });
  }

  /**
   * Writes `{id}.jpg`: the frame at half of `durationSeconds`, 480 px wide and `480 · height /
   * width` px high (integer division, composed.sh's `THUMBNAIL_HEIGHT`), from the requested
   * `width` × `height`. @throws MeetrecError `finalize_failed` when ffmpeg fails.
   */
  async writeThumbnail(ffmpegPath: string, durationSeconds: number, width: number, height: number): Promise<void> {
    const tmp = join(this.dir, `.${this.id}.jpg.partial`);
    const h = Math.floor((480 * height) / width);
    try {
      await run(ffmpegPath, ["-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-ss", String(Math.max(0, durationSeconds / 2)), "-i", this.mediaFile,
        "-frames:v", "1", "-s", `480x${h}`, "-f", "mjpeg", tmp], { maxBuffer: 1 << 20 });
      await rename(tmp, this.thumbnailFile);
    } catch (err) {
      await rm(tmp, { force: true });
      throw new MeetrecError("finalize_failed", `The thumbnail ${this.id}.jpg could not be made: ${errorMessage(err).split("\n")[0]}`, { cause: err });
    }
  }

  /** `chmod 777` the folder and everything in it (composed.sh: `chmod -R 777 /recordings/$VIDEO_ID`). Never throws. */
  async chmodAll(): Promise<void> {
    await chmod(this.dir, 0o777).catch(() => undefined);
    const entries = await readdir(this.dir, { recursive: true }).catch(() => [] as string[]);
    for (const e of entries) await chmod(join(this.dir, e), 0o777).catch(() => undefined);
  }
}

/** Reads ffprobe's JSON as `RecordingInfoUtils` does (`format.duration`, `format.size`, `streams[].codec_type`). @throws Error when it is not that JSON. */
export function readInfo(json: string): InfoSummary {
  const j = JSON.parse(json) as { format?: { duration?: string; size?: string }; streams?: { codec_type?: string }[] };
  if (!j.format || !Array.isArray(j.streams)) throw new Error("not ffprobe's -show_format -show_streams JSON");
  return {
    hasAudio: j.streams.some((s) => s.codec_type === "audio"),
    hasVideo: j.streams.some((s) => s.codec_type === "video"),
    durationSeconds: Number(j.format.duration ?? 0),
    bytes: Number(j.format.size ?? 0),
  };
}

/** The fields the stop leaves (composed.sh): the media's streams, duration and size, `stopped` — or `failed` without any stream. */
export function sealedFields(info: InfoSummary | undefined): SealedFields {
  if (!info || (!info.hasAudio && !info.hasVideo)) return { hasAudio: false, hasVideo: false, duration: info?.durationSeconds ?? 0, size: info?.bytes ?? 0, status: "failed" };
  return { hasAudio: info.hasAudio, hasVideo: info.hasVideo, duration: info.durationSeconds, size: info.bytes, status: "stopped" };
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Creates or empties the file `path` (mode 666). */
export async function emptyFile(path: string): Promise<void> {
  await writeFile(path, "", { mode: 0o666 });
  await chmod(path, 0o666);
}

/** Creates the file `path` (mode 666) unless it exists; its content is kept (`touch`). */
export async function touchFile(path: string): Promise<void> {
  await writeFile(path, "", { flag: "a", mode: 0o666 });
  await chmod(path, 0o666).catch(() => undefined);
}
