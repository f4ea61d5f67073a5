/**
 * The local segment store: `{dataDir}/recordings/{id}/` with `manifest.json`,
 * `p{period}/init.mp4`, `p{period}/{seq:06}.m4s` and the final file. A segment is durable
 * (fsync'd, renamed into place, directory fsync'd, manifest rewritten atomically) before
 * {@link RecordingMedia.addSegment} resolves.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, readFile, rename, rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { atomicWrite, fsyncPath } from "../util/durable.js";
import { MeetrecError } from "../util/errors.js";
import type { Manifest, ManifestPeriod, ManifestSegment } from "./manifest.js";
import type { FrameCounts } from "../store/index.js";
import { MANIFEST, initSegmentPath, mediaSegmentPath, periodDir, recordingDir } from "./layout.js";

async function sha256File(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest("hex");
}


/** Moves `src` to `dest` durably: fsync file, rename, fsync directory. Same filesystem only. */
async function durableMove(src: string, dest: string): Promise<void> {
  await fsyncPath(src);
  await mkdir(dirname(dest), { recursive: true });
  await rename(src, dest);
  await fsyncPath(dirname(dest));
}

/** The media of one recording in the local store. Calls must not overlap (the caller serializes them). */
export class RecordingMedia {
  /** Mutations run one at a time (the capture's ingest and the bucket mirror both write). */
  private chain: Promise<unknown> = Promise.resolve();
  private constructor(readonly dir: string, private manifest: Manifest) {}

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Path of the manifest file. */
  get manifestPath(): string {
    return join(this.dir, MANIFEST);
  }

  /** A snapshot of the current manifest. */
  get current(): Manifest {
    return structuredClone(this.manifest);
  }

  /**
   * Opens (or creates) the media directory of `recordingId` under `root`.
   * @throws MeetrecError `store_failed` when the existing manifest is unreadable.
   */
  static async open(root: string, recordingId: string, init: { mode: "video" | "audio"; segmentSeconds: number; audioCodec?: "aac" | "opus" }): Promise<RecordingMedia> {
    const dir = recordingDir(root, recordingId);
    await mkdir(dir, { recursive: true });
    let manifest: Manifest;
    try {
      manifest = JSON.parse(await readFile(join(dir, MANIFEST), "utf8")) as Manifest;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
        throw new MeetrecError("store_failed", `Manifest of ${recordingId} is unreadable: ${(err as Error).message}`, { cause: err });
      }
      manifest = { version: 1, recordingId, mode: init.mode, ...(init.audioCodec === "opus" ? { audioCodec: "opus" as const } : {}), segmentSeconds: init.segmentSeconds, periods: [], updatedAt: new Date().toISOString() };
    }
    const media = new RecordingMedia(dir, manifest);
    await media.save();
    return media;
  }

  private async save(): Promise<void> {
    this.manifest.updatedAt = new Date().toISOString();
    await atomicWrite(this.manifestPath, JSON.stringify(this.manifest, null, 1));
  }

  private period(index: number): ManifestPeriod {
    const p = this.manifest.periods.find((x) => x.index === index);
    if (!p) throw new MeetrecError("store_failed", `Period ${index} was never opened`);
    return p;
  }

  /** Starts period `manifest.periods.length + 1`; returns its number. */
  beginPeriod(reason: string, startedAt = new Date()): Promise<number> {
    return this.serial(() => this.beginPeriodNow(reason, startedAt));
  }

  private async beginPeriodNow(reason: string, startedAt: Date): Promise<number> {
    const index = this.manifest.periods.length + 1;
    this.manifest.periods.push({ index, reason, startedAt: startedAt.toISOString(), segments: [] });
    await this.save();
    return index;
  }

  /** Moves the period's init segment from `src` into the store. */
  addInit(period: number, src: string): Promise<void> {
    return this.serial(() => this.addInitNow(period, src));
  }

  private async addInitNow(period: number, src: string): Promise<void> {
    const p = this.period(period);
    const file = initSegmentPath(period);
    await durableMove(src, join(this.dir, file));
    p.init = file;
    p.initSha256 = await sha256File(join(this.dir, file));
    await this.save();
  }

  /**
   * Moves a closed media segment from `src` into the store and records it in the manifest.
   * Returns the manifest entry. @throws on I/O failure (the source file is left in place).
   */
  addSegment(period: number, seq: number, src: string, durationMs: number, frames?: FrameCounts): Promise<ManifestSegment> {
    return this.serial(() => this.addSegmentNow(period, seq, src, durationMs, frames));
  }

  private async addSegmentNow(period: number, seq: number, src: string, durationMs: number, frames?: FrameCounts): Promise<ManifestSegment> {
    const p = this.period(period);
    const file = mediaSegmentPath(period, seq);
    const dest = join(this.dir, file);
    const sha256 = await sha256File(src);
    const { size } = await stat(src);
    await durableMove(src, dest);
    const startMs = this.manifest.periods.reduce((t, x) => t + x.segments.reduce((s, y) => s + y.durationMs, 0), 0);
    const seg: ManifestSegment = { seq, file, startMs, durationMs, bytes: size, sha256, ...(frames ? { frames } : {}) };
    p.segments.push(seg);
    await this.save();
    return seg;
  }

  /**
   * Records that `item` of `period` is in the segment bucket (upload acknowledged), then removes
   * the local copy (unless `opts.keepLocal`): manifest first, so a crash in between leaves a
   * file that is only garbage.
   */
  markRemote(period: number, item: "init" | number, opts: { keepLocal?: boolean } = {}): Promise<void> {
    return this.serial(async () => {
      const p = this.period(period);
      let file: string | undefined;
      if (item === "init") {
        p.initRemote = true;
        file = p.init;
      } else {
        const s = p.segments.find((x) => x.seq === item);
        if (!s) throw new MeetrecError("store_failed", `Segment ${item} of period ${period} is not in the manifest`);
        s.remote = true;
        file = s.file;
      }
      await this.save();
      if (file && !opts.keepLocal) await rm(join(this.dir, file), { force: true });
    });
  }

  /**
   * Takes the periods of `remote` (the bucket's manifest of this recording) that this copy
   * lacks, all marked as in the bucket: a machine continuing another's recording starts from it.
   */
  adopt(remote: Manifest): Promise<void> {
    return this.serial(async () => {
      // A fresh scratch copy (an orphan found in the bucket) takes what the recording was.
      if (this.manifest.periods.length === 0) {
        this.manifest.mode = remote.mode;
        if (remote.audioCodec) this.manifest.audioCodec = remote.audioCodec;
      }
      for (const p of remote.periods) {
        if (this.manifest.periods.some((x) => x.index === p.index)) continue;
        this.manifest.periods.push({ ...p, initRemote: !!p.init, segments: p.segments.map((s) => ({ ...s, remote: true })) });
      }
      this.manifest.periods.sort((a, b) => a.index - b.index);
      await this.save();
    });
  }

  /** Removes the segments (all periods) once a final file exists; keeps manifest and final file. */
  async removeSegments(): Promise<void> {
    for (const p of this.manifest.periods) await rm(join(this.dir, periodDir(p.index)), { recursive: true, force: true });
  }
}
