/**
 * Finalize: stitch every period's init + media segments into one file by stream copy (no
 * re-encode). A period's init segment followed by its media segments is one valid fragmented
 * MP4 stream (ISO/IEC 23000-19 CMAF); it is piped into ffmpeg and remuxed. Several periods
 * are remuxed one by one and joined by ffmpeg's concat demuxer, which places each period
 * after the previous one on the timeline. Output: MP4 with `faststart` (moov first) for video,
 * M4A for audio-only AAC, Ogg for audio-only Opus (the encoder wrote Opus into the fragments,
 * so Ogg is a change of container too: RFC 7845 Ogg Opus, written by ffmpeg's muxer). Files
 * already moved to the segment bucket are streamed from it.
 */
import { spawn } from "node:child_process";
import { createReadStream, existsSync } from "node:fs";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import type { Readable } from "node:stream";
import { join } from "node:path";
import { once } from "node:events";
import { MeetrecError, withoutPaths } from "../util/errors.js";
import { manifestDurationMs, playablePeriods, type Manifest, type ManifestPeriod } from "./manifest.js";
import { mediaStartSeconds, probe } from "./probe.js";
import { finalFileName, periodDir } from "./layout.js";
import type { ProbeResult } from "./probe.js";

/** Largest allowed difference between the file's duration and the segments' total, s. */
export const DURATION_TOLERANCE_S = 0.5;

/** The finished file. */
export interface FinalFile {
  /** File name inside the recording directory (`recording.mp4` / `recording.m4a` / `recording.ogg`). */
  name: string;
  path: string;
  bytes: number;
  durationSeconds: number;
  /**
   * Wall-clock time (ms since the epoch) the file's time 0 shows: the first stitched period's
   * encoder start plus the start of its first segment's media ({@link mediaStartSeconds}, `any`
   * stream); the encoder start alone when ffprobe cannot tell. So `startedAtMs + t * 1000` is
   * when the moment at `t` s into the file was captured (until a period gap).
   */
  startedAtMs: number;
  probe: ProbeResult;
}


/** Opens one stored file (path relative to the recording directory) for reading. */
export type SegmentSource = (rel: string) => Promise<Readable>;

/** Runs ffmpeg with `args`, writing `inputs` (opened with `open`, in order) to its stdin. @throws Error with ffmpeg's stderr. */
async function ffmpegWithInput(ffmpeg: string, args: string[], inputs: string[], open: SegmentSource = async (f) => createReadStream(f)): Promise<void> {
  const child = spawn(ffmpeg, args, { stdio: [inputs.length ? "pipe" : "ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000); });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code) => resolve(code));
  });
  if (child.stdin) {
    child.stdin.on("error", () => undefined); // EPIPE when ffmpeg dies: its exit code tells
    const stdin = child.stdin;
    try {
      for (const file of inputs) {
        for await (const chunk of await open(file)) {
          if (!stdin.write(chunk)) await once(stdin, "drain");
        }
      }
    } catch {
      /* ffmpeg died: reported through its exit code */
    }
    stdin.end();
  }
  const code = await exited;
  if (code !== 0) throw new Error(stderr.trim().slice(-800) || `ffmpeg exited with ${code}`);
}

const COMMON = ["-hide_banner", "-loglevel", "error", "-nostdin", "-y"];

/** Remuxes one period (init + segments through stdin) into `out`. */
function remuxPeriod(p: ManifestPeriod, out: string, ffmpeg: string, faststart: boolean, open: SegmentSource): Promise<void> {
  const inputs = [p.init!, ...p.segments.map((s) => s.file)];
  return ffmpegWithInput(ffmpeg, [...COMMON, "-f", "mp4", "-i", "pipe:0", "-map", "0", "-c", "copy",
    ...(faststart ? ["-movflags", "+faststart"] : []), out], inputs, open);
}

/**
 * Where finalize reads a file: the local copy when there is one, else `remote` (the segment
 * bucket) — streamed, never gathered in memory.
 */
export function localThenRemote(dir: string, remote?: SegmentSource): SegmentSource {
  return async (rel) => {
    const path = join(dir, rel);
    if (!remote || existsSync(path)) return createReadStream(path);
    return remote(rel);
  };
}

/**
 * Stitches the manifest's periods in `dir` into `dir/{name}`.
 * @throws MeetrecError `finalize_failed` when there is nothing to stitch, ffmpeg fails, or the
 * result's duration differs from the segments' total by more than {@link DURATION_TOLERANCE_S}.
 * Segments are never touched, so a failed finalize can be retried.
 */
export async function finalize(dir: string, manifest: Manifest, opts: { ffmpegPath?: string; ffprobePath?: string; name?: string; remote?: SegmentSource } = {}): Promise<FinalFile> {
  const open = localThenRemote(dir, opts.remote);
  const periods = playablePeriods(manifest);
  if (periods.length === 0) throw new MeetrecError("finalize_failed", "No media segment was captured: nothing to finalize");
  const ffmpeg = opts.ffmpegPath ?? "ffmpeg";
  const name = opts.name ?? finalFileName(manifest.mode, manifest.audioCodec);
  const ext = name.slice(name.lastIndexOf("."));
  // MP4/M4A: moov first. Ogg has no index to move; its periods are stitched from MP4 pieces.
  const ogg = ext === ".ogg";
  const periodExt = ogg ? ".mp4" : ext;
  const out = join(dir, name);
  const tmp = join(dir, `.${name}.partial${ext}`);
  const scratch: string[] = [tmp];
  try {
    if (periods.length === 1) {
      await remuxPeriod(periods[0], tmp, ffmpeg, !ogg, open);
    } else {
      const list = ["ffconcat version 1.0"];
      for (const p of periods) {
        const file = join(dir, periodDir(p.index), `period${periodExt}`);
        scratch.push(file);
        await mkdir(join(dir, periodDir(p.index)), { recursive: true });
        await remuxPeriod(p, file, ffmpeg, false, open);
        list.push(`file '${file.replace(/'/g, "'\\''")}'`);
      }
      const listFile = join(dir, "finalize.ffconcat");
      scratch.push(listFile);
      await writeFile(listFile, list.join("\n") + "\n");
      await ffmpegWithInput(ffmpeg, [...COMMON, "-f", "concat", "-safe", "0", "-i", listFile, "-map", "0", "-c", "copy", ...(ogg ? [] : ["-movflags", "+faststart"]), tmp], []);
    }
  } catch (err) {
    await Promise.all(scratch.map((f) => rm(f, { force: true })));
    // ffmpeg's message names the recording's files: relative to its directory in what clients see.
    throw new MeetrecError("finalize_failed", `Stitching ${periods.length} period(s) failed: ${withoutPaths((err as Error).message, [dir])}; segments kept for another try`, { cause: err });
  }
  await Promise.all(scratch.slice(1).map((f) => rm(f, { force: true })));
  const info = await probe(tmp, opts.ffprobePath);
  const expected = manifestDurationMs(manifest) / 1000;
  if (Math.abs(info.durationSeconds - expected) > DURATION_TOLERANCE_S) {
    await rm(tmp, { force: true });
    throw new MeetrecError("finalize_failed", `Stitched file lasts ${info.durationSeconds.toFixed(2)} s but its segments total ${expected.toFixed(2)} s (tolerance ${DURATION_TOLERANCE_S} s); segments kept for another try`);
  }
  const startedAtMs = await timeZero(periods[0], open, opts.ffprobePath);
  await rename(tmp, out);
  return { name, path: out, bytes: info.bytes, durationSeconds: info.durationSeconds, startedAtMs, probe: info };
}

/** See {@link FinalFile.startedAtMs}: `p` is the first stitched period. */
async function timeZero(p: ManifestPeriod, open: SegmentSource, ffprobePath?: string): Promise<number> {
  const read = async (rel: string) => {
    const chunks: Buffer[] = [];
    for await (const c of await open(rel)) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  };
  const startS = await Promise.all([read(p.init!), read(p.segments[0].file)])
    .then(([init, seg]) => mediaStartSeconds(init, seg, "any", ffprobePath), () => undefined);
  return Date.parse(p.startedAt) + Math.round((startS ?? 0) * 1000);
}
