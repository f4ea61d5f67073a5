/**
 * Per-participant audio tracks (`tracks: true`): each remote audio track the recorder's page
 * receives is also recorded on its own by a `MediaRecorder` in the page (capture/tracks.ts),
 * whose chunks arrive here about once a second and are made durable as they arrive:
 *
 * - while recording: `{recording dir}/tracks/{n}.webm|ogg`, appended and fsync'd chunk by chunk
 *   (a kill -9 loses at most the chunk in flight, ≤ ~1 s), and `tracks/index.json`
 *   ({@link TrackIndex}: which source each file holds and the wall clock of its first sample),
 *   rewritten atomically (temporary name, fsync, rename) whenever a file begins;
 * - at finalize: each chunk file remuxed by stream copy into Ogg/Opus (RFC 7845)
 *   `{file name}.track-{n}.ogg` beside the finished file, with where it lies in that file
 *   ({@link trackOffsetMs}), listed in `RecordingFile.tracks`.
 *
 * One chunk file never spans a gap in the mixed file: the page starts a new recorder (a new
 * `n`) with every capture period and stops them while paused (capture/session.ts).
 */
import { spawn } from "node:child_process";
import { open, readFile, rename, rm, stat, mkdir, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import type { FilePeriod, RecordingTrack } from "../store/index.js";
import { MeetrecError } from "../util/errors.js";
import { probe } from "./probe.js";
import { TRACKS_DIR, TRACKS_INDEX, trackChunkPath, trackFileName, trackNumber } from "./layout.js";

export { TRACKS_DIR, TRACKS_INDEX, trackChunkPath, trackFileName };

/** Containers a page's `MediaRecorder` may write (by the page's `isTypeSupported`): WebM (Chromium, Firefox) or Ogg (Firefox). */
export const TRACK_CONTAINERS = ["webm", "ogg"] as const;
export type TrackContainer = (typeof TRACK_CONTAINERS)[number];

/** Most track files one recording keeps (a page with more remote audio tracks records the first ones). */
export const MAX_TRACK_FILES = 200;
/** Largest chunk taken from the page, bytes (1 s of Opus is ~4–16 KiB; a bigger one is not a chunk of a meeting's sound). */
export const MAX_CHUNK_BYTES = 512 * 1024;

/**
 * How much later the mixed file plays a moment of a remote track than the track's own
 * recorder, ms, per browser, besides `capture.audioDelayMs`: the recorder taps the decoded
 * track, the mixed sound goes on through the browser's audio output, PulseAudio and ffmpeg's
 * pulse input, and is then delayed by `audioDelayMs` (which lines it up with the picture).
 * Measured on the Janus fixture with `audioDelayMs` 70 by muting a publisher and finding the
 * drop of its tone in both files (`test/e2e/tracks.test.ts`, 10 ms windows): 117–141 ms in
 * Chromium (10 runs), 110–160 ms in Firefox (8 runs); the medians (≈122, 137) less the 70 ms are used.
 * {@link trackAlignMs} adds `audioDelayMs` (docs/decisions.md, "Per-participant tracks").
 */
export const TRACK_CHAIN_MS: Record<"chromium" | "firefox", number> = { chromium: 52, firefox: 67 };

/** What to add to a recorder's start (page wall clock, ms) to place it in the mixed file: {@link TRACK_CHAIN_MS} + `audioDelayMs`. */
export function trackAlignMs(browser: "chromium" | "firefox", audioDelayMs: number): number {
  return TRACK_CHAIN_MS[browser] + audioDelayMs;
}

/** One chunk file as the index lists it. */
export const TrackEntry = z.object({
  /** 1-based number; the file is `tracks/{n}.{container}`, finalized as `{file}.track-{n}.ogg`. */
  n: z.number().int().min(1),
  /** The source: `{peer connection}/{MediaStreamTrack.id}`, the watcher's and the speakers sidecar's track id. */
  source: z.string().max(300),
  container: z.enum(TRACK_CONTAINERS),
  /** Wall clock (ms since the epoch, the page's `Date.now()`) at the recorder's start, as the page took it ({@link trackAlignMs} is added at finalize). */
  startedAtMs: z.number(),
});
export type TrackEntry = z.infer<typeof TrackEntry>;

/** `tracks/index.json`. */
export const TrackIndex = z.object({ version: z.literal(1), tracks: z.array(TrackEntry) });
export type TrackIndex = z.infer<typeof TrackIndex>;

/**
 * Where a track whose first sample was heard at wall clock `startedAtMs` begins in the file
 * laid out as `timeline` (`RecordingFile.timeline`), ms from the file's start: in the period
 * it starts in (or the next one, when it starts in a gap or before the file), the period's
 * file time plus the wall time since the period's start. Negative when the track begins
 * before the file (its first `-offsetMs` ms have no counterpart in the file). Undefined
 * without a timeline, or when the track starts after the file's end.
 */
export function trackOffsetMs(timeline: readonly FilePeriod[] | undefined, startedAtMs: number): number | undefined {
  if (!timeline?.length) return undefined;
  const p = timeline.find((x) => startedAtMs <= x.wallMs + x.durationMs);
  if (!p) return undefined;
  return Math.round(p.fileMs + (startedAtMs - p.wallMs));
}

/** Reads a recording's track index; an empty one when there is none (no tracks were asked for, or none arrived). @throws Error when it exists but is unreadable JSON. */
export async function readTrackIndex(dir: string): Promise<TrackIndex> {
  let raw: string;
  try {
    raw = await readFile(join(dir, TRACKS_INDEX), "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { version: 1, tracks: [] };
    throw err;
  }
  return TrackIndex.parse(JSON.parse(raw));
}

async function syncDir(path: string): Promise<void> {
  const fh = await open(path, "r");
  try { await fh.sync(); } finally { await fh.close(); }
}

/**
 * The chunk store of one recording (see module doc): {@link begin} a file per recorder,
 * {@link append} its chunks in order (each durable before the call resolves), {@link end} it.
 * Calls for one file must not overlap (the caller queues them); different files may.
 */
export class TrackChunks {
  private readonly handles = new Map<number, FileHandle>();
  private writing: Promise<void> = Promise.resolve();

  private constructor(private readonly dir: string, private index: TrackIndex) {}

  /** Opens the store of the recording directory `dir`, continuing the numbers of an earlier run. @throws Error when the index is unreadable. */
  static async open(dir: string): Promise<TrackChunks> {
    return new TrackChunks(dir, await readTrackIndex(dir));
  }

  /** The index as written so far. */
  get entries(): readonly TrackEntry[] {
    return this.index.tracks;
  }

  /**
   * Begins a chunk file for `source` whose first sample is at `startedAtMs` (wall clock, ms):
   * the index is rewritten atomically first. @returns its number, or undefined when the
   * recording has {@link MAX_TRACK_FILES} already. @throws the file system's error.
   */
  async begin(source: string, container: TrackContainer, startedAtMs: number): Promise<number | undefined> {
    const run = this.writing.then(async () => {
      if (this.index.tracks.length >= MAX_TRACK_FILES) return undefined;
      const n = (this.index.tracks.at(-1)?.n ?? 0) + 1;
      await mkdir(join(this.dir, TRACKS_DIR), { recursive: true });
      const next: TrackIndex = { version: 1, tracks: [...this.index.tracks, { n, source: source.slice(0, 300), container, startedAtMs }] };
      const tmp = join(this.dir, `${TRACKS_INDEX}.tmp`);
      const fh = await open(tmp, "w");
      try {
        await fh.writeFile(JSON.stringify(next));
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, join(this.dir, TRACKS_INDEX));
      this.handles.set(n, await open(join(this.dir, trackChunkPath(n, container)), "a"));
      await syncDir(join(this.dir, TRACKS_DIR));
      this.index = next;
      return n;
    });
    this.writing = run.then(() => undefined, () => undefined);
    return run;
  }

  /** Appends `chunk` to file `n` and fsyncs it. No-op for a file not begun here (or ended). @throws the file system's error. */
  async append(n: number, chunk: Buffer): Promise<void> {
    const fh = this.handles.get(n);
    if (!fh || chunk.length === 0) return;
    await fh.write(chunk);
    await fh.sync();
  }

  /** Closes file `n` (its recorder stopped). Never throws. */
  async end(n: number): Promise<void> {
    const fh = this.handles.get(n);
    this.handles.delete(n);
    await fh?.close().catch(() => undefined);
  }

  /** Closes every open file. Never throws. */
  async close(): Promise<void> {
    await Promise.all([...this.handles.keys()].map((n) => this.end(n)));
  }
}

/** Runs ffmpeg with `args`. @throws Error with ffmpeg's last stderr lines. */
function ffmpeg(path: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(path, args, { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => { stderr = (stderr + d.toString()).slice(-2000); });
    child.once("error", reject);
    child.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(stderr.trim().slice(-600) || `ffmpeg exited with ${code}`))));
  });
}

/** A track finalized beside the file, and what became of the ones that could not be. */
export interface FinalTracks {
  tracks: RecordingTrack[];
  /** Chunk files that held no playable sound (`n`, why). */
  skipped: { n: number; why: string }[];
}

/**
 * Remuxes every chunk file of the recording in `dir` by stream copy (`-c copy`, Opus stays
 * Opus) into `{fileName}.track-{n}.ogg` in `dir`, in index order, and lists them with their
 * offsets in the file laid out as `timeline` (each recorder's start moved by `alignMs`,
 * {@link trackAlignMs}). A chunk file that is empty, cut short before its
 * first packet, or that ffmpeg cannot read is skipped (listed in `skipped`); a file cut by a
 * kill keeps every whole chunk before the cut. Never re-encodes.
 * @throws Error when the index is unreadable.
 */
export async function finalizeTracks(dir: string, fileName: string, timeline: readonly FilePeriod[] | undefined, tools: { ffmpegPath: string; ffprobePath: string }, alignMs = 0): Promise<FinalTracks> {
  const index = await readTrackIndex(dir);
  const tracks: RecordingTrack[] = [];
  const skipped: FinalTracks["skipped"] = [];
  for (const t of index.tracks) {
    const src = join(dir, trackChunkPath(t.n, t.container));
    const name = trackFileName(fileName, t.n);
    const out = join(dir, name);
    const size = await stat(src).then((s) => s.size, () => 0);
    if (size === 0) {
      skipped.push({ n: t.n, why: "no sound arrived" });
      continue;
    }
    try {
      await ffmpeg(tools.ffmpegPath, ["-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-err_detect", "ignore_err",
        "-f", t.container === "ogg" ? "ogg" : "matroska", "-i", src, "-map", "0:a:0", "-c", "copy", "-f", "ogg", `${out}.partial`]);
      const p = await probe(`${out}.partial`, tools.ffprobePath);
      if (!(p.durationSeconds > 0)) throw new Error("no audio packets");
      await rename(`${out}.partial`, out);
      const startedAtMs = t.startedAtMs + alignMs;
      const offsetMs = trackOffsetMs(timeline, startedAtMs);
      tracks.push({
        name, source: t.source, ...(offsetMs !== undefined ? { offsetMs } : {}), startedAt: new Date(startedAtMs).toISOString(),
        durationSeconds: Math.round(p.durationSeconds * 1000) / 1000, bytes: (await stat(out)).size,
      });
    } catch (err) {
      await rm(`${out}.partial`, { force: true });
      skipped.push({ n: t.n, why: err instanceof Error ? err.message.split("\n").at(-1)!.slice(0, 200) : String(err) });
    }
  }
  return { tracks, skipped };
}

/** Removes the chunk files and their index (once the tracks are finalized and the segments go too). */
export async function removeTrackChunks(dir: string): Promise<void> {
  await rm(join(dir, TRACKS_DIR), { recursive: true, force: true });
}

/**
 * Which track of `tracks` number `n` names (`GET …/tracks/{n}`: the `n` of `{file}.track-{n}.ogg`).
 * @throws MeetrecError `not_found` naming the tracks there are.
 */
export function trackByNumber(fileName: string, tracks: readonly RecordingTrack[] | undefined, n: number): RecordingTrack {
  const t = tracks?.find((x) => x.name === trackFileName(fileName, n));
  if (!t) {
    const have = (tracks ?? []).map((x) => trackNumber(x.name));
    throw new MeetrecError("not_found", have.length ? `No track ${n}; the recording has tracks ${have.join(", ")}` : "The recording has no per-participant tracks (ask for them with tracks: true)");
  }
  return t;
}
