/**
 * A recording's files wherever they are: the finished file, a segment and the manifest on this
 * machine's disk or in the segment bucket (a cluster keeps them there), and a local copy of the
 * finished file for deliveries. Callers never decide between disk and bucket themselves.
 */
import { createWriteStream, existsSync } from "node:fs";
import { mkdir, readFile, rename, rm } from "node:fs/promises";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { join } from "node:path";
import type { Config } from "../config/index.js";
import type { Recording } from "../store/index.js";
import { MeetrecError } from "../util/errors.js";
import type { Logger } from "../util/log.js";
import { RecordingBucket } from "./bucket.js";
import { MANIFEST, cacheDir, mediaPlace, trackNumber } from "./layout.js";
import type { Manifest } from "./manifest.js";
import { trackByNumber } from "./tracks.js";

/** Where a file can be read from: a file in a local directory (to send with ranges), or a stream from the bucket. */
export type FileSource =
  | { where: "disk"; dir: string; rel: string }
  | { where: "bucket"; body: Readable; length?: number; contentRange?: string };

/** See module doc. */
export class RecordingFiles {
  constructor(private readonly config: Config, private readonly log: Logger) {}

  /** Directory of a recording's media on this machine: `{media root}/recordings/{id}`. */
  dir(rec: Pick<Recording, "id" | "backend">): string {
    return mediaPlace(this.config, rec).dir;
  }

  private bucket(rec: Pick<Recording, "id" | "backend">): RecordingBucket | undefined {
    const cfg = mediaPlace(this.config, rec).bucket;
    return cfg ? new RecordingBucket(cfg, rec.id) : undefined;
  }

  /**
   * Absolute path of the finished file on this machine.
   * @throws MeetrecError `not_ready` when there is none yet; `not_found` when it is gone from
   * the disk (the message names no local path — it reaches API clients; the log has the path).
   */
  filePath(rec: Recording): string {
    if (!rec.file) throw new MeetrecError("not_ready", `Recording ${rec.id} has no file yet (status ${rec.status}); wait for status completed`);
    const path = join(this.dir(rec), rec.file.name);
    if (!existsSync(path)) {
      this.log.warn({ recordingId: rec.id, path }, "the finished file is gone from the media directory");
      throw new MeetrecError("not_found", `The file of recording ${rec.id} is gone from the server's media directory (removed outside meetrec); ask the server's operator`);
    }
    return path;
  }

  /**
   * The finished file, optionally a byte range of it (`range`: an HTTP `Range` value, passed on
   * to the bucket; a local file is read with ranges by the caller).
   * @throws MeetrecError `not_ready` | `not_found` | `range_not_satisfiable` (bucket); the SDK's error when the bucket fails.
   */
  async file(rec: Recording, range?: string): Promise<FileSource> {
    if (!rec.file?.stored) {
      this.filePath(rec);
      return { where: "disk", dir: this.dir(rec), rel: rec.file!.name };
    }
    const bucket = this.bucket(rec);
    if (!bucket) throw new MeetrecError("not_found", `The file of recording ${rec.id} is in a bucket this server has no settings for (segments.s3)`);
    return { where: "bucket", ...(await bucket.openFinal(rec.file.name, range)) };
  }

  /**
   * A local path of the finished file for deliveries: the file itself, or (cluster: the file is
   * in the segment bucket) a copy downloaded once to `{dataDir}/cache/{id}/`.
   * @throws MeetrecError `not_ready` | `not_found`; the SDK's error when the bucket fails.
   */
  async localCopy(rec: Recording): Promise<string> {
    if (!rec.file?.stored) return this.filePath(rec);
    const path = join(cacheDir(this.config, rec.id), rec.file.name);
    if (existsSync(path)) return path;
    const src = await this.file(rec);
    if (src.where !== "bucket") return join(src.dir, src.rel);
    await mkdir(cacheDir(this.config, rec.id), { recursive: true });
    await pipeline(src.body, createWriteStream(`${path}.partial`));
    await rename(`${path}.partial`, path);
    return path;
  }

  /**
   * Per-participant track `n` of the finished file (`{file}.track-{n}.ogg`, media/tracks.ts):
   * from this machine's disk, or the segment bucket when the file is kept there (cluster).
   * @throws MeetrecError `not_ready` (no file yet) | `not_found` (no such track, or gone); the SDK's error when the bucket fails.
   */
  async track(rec: Recording, n: number): Promise<FileSource> {
    if (!rec.file) throw new MeetrecError("not_ready", `Recording ${rec.id} has no file yet (status ${rec.status}); its tracks are made with it`);
    const t = trackByNumber(rec.file.name, rec.file.tracks, n);
    if (!rec.file.stored) {
      const dir = this.dir(rec);
      if (!existsSync(join(dir, t.name))) {
        this.log.warn({ recordingId: rec.id, path: join(dir, t.name) }, "a track file is gone from the media directory");
        throw new MeetrecError("not_found", `Track ${n} of recording ${rec.id} is gone from the server's media directory (removed outside meetrec); ask the server's operator`);
      }
      return { where: "disk", dir, rel: t.name };
    }
    const bucket = this.bucket(rec);
    if (!bucket) throw new MeetrecError("not_found", `The tracks of recording ${rec.id} are in a bucket this server has no settings for (segments.s3)`);
    return { where: "bucket", ...(await bucket.openFinal(t.name)) };
  }

  /**
   * Local paths of the finished file's per-participant tracks for deliveries, in order (copies
   * downloaded once to `{dataDir}/cache/{id}/` when they are kept in the bucket). Empty when it has none.
   * @throws MeetrecError `not_found` when one is gone; the SDK's error when the bucket fails.
   */
  async localTracks(rec: Recording): Promise<{ name: string; path: string }[]> {
    const out: { name: string; path: string }[] = [];
    for (const t of rec.file?.tracks ?? []) {
      const src = await this.track(rec, trackNumber(t.name) ?? 0);
      if (src.where === "disk") {
        out.push({ name: t.name, path: join(src.dir, src.rel) });
        continue;
      }
      const path = join(cacheDir(this.config, rec.id), t.name);
      if (!existsSync(path)) {
        await mkdir(cacheDir(this.config, rec.id), { recursive: true });
        await pipeline(src.body, createWriteStream(`${path}.partial`));
        await rename(`${path}.partial`, path);
      } else src.body.destroy();
      out.push({ name: t.name, path });
    }
    return out;
  }

  /** The manifest as stored so far: this machine's, else the segment bucket's (cluster); undefined when there is none. */
  async manifest(rec: Pick<Recording, "id" | "backend">): Promise<Manifest | undefined> {
    try {
      return JSON.parse(await readFile(join(this.dir(rec), MANIFEST), "utf8")) as Manifest;
    } catch {
      return this.bucket(rec)?.getManifest();
    }
  }

  /**
   * An init or media segment (`rel`: `p{n}/init.mp4`, `p{n}/{seq}.m4s`): from this machine's
   * disk, else (uploaded segments leave the disk) from the segment bucket.
   * @throws MeetrecError `not_found` when it is in neither.
   */
  async segment(rec: Pick<Recording, "id" | "backend">, rel: string): Promise<FileSource> {
    const dir = this.dir(rec);
    if (existsSync(join(dir, rel))) return { where: "disk", dir, rel };
    const body = await this.bucket(rec)?.open(rel).catch((err: unknown) => {
      if (err instanceof MeetrecError && err.code === "store_failed") return undefined; // not in the bucket either
      throw err;
    });
    if (body) return { where: "bucket", body };
    throw new MeetrecError("not_found", `No such segment: ${rel} of recording ${rec.id} (live.m3u8 lists the segments there are)`);
  }

  /**
   * Removes every file of a recording: its segments and stored final file in the segment
   * bucket, its local copy in the cache, and its media directory. (A copy a delivery put
   * elsewhere is the delivery's.) @throws the SDK's error when the bucket cannot be reached
   * (nothing local is removed then).
   */
  async remove(rec: Recording): Promise<void> {
    const bucket = this.bucket(rec);
    if (bucket) {
      await bucket.deleteSegments();
      if (rec.file?.stored) {
        await bucket.deleteFinal(rec.file.stored.key);
        for (const t of rec.file.tracks ?? []) await bucket.deleteFinal(bucket.key(t.name));
      }
    }
    await rm(cacheDir(this.config, rec.id), { recursive: true, force: true });
    await rm(this.dir(rec), { recursive: true, force: true });
  }

  /** Removes a recording's media directory on this machine (retention). */
  async removeLocal(rec: Pick<Recording, "id" | "backend">): Promise<void> {
    await rm(this.dir(rec), { recursive: true, force: true });
  }
}
