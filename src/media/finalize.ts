/**
 * Finalize: stitch every period's init + media segments into one file by stream copy (no
 * re-encode). Each period gets a VOD playlist (RFC 8216) and the periods are joined by
 * ffmpeg's concat demuxer, which rebases each period's timestamps onto the previous one.
 * Output: MP4 with `faststart` (moov first) for video, M4A for audio-only.
 */
import { execFile } from "node:child_process";
import { rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { MeetrecError } from "../util/errors.js";
import { manifestDurationMs, playablePeriods, toHlsPlaylist, type Manifest } from "./manifest.js";
import { probe, type ProbeResult } from "./probe.js";

const run = promisify(execFile);

/** Largest allowed difference between the file's duration and the segments' total, s. */
export const DURATION_TOLERANCE_S = 0.5;

/** The finished file. */
export interface FinalFile {
  /** File name inside the recording directory (`recording.mp4` / `recording.m4a`). */
  name: string;
  path: string;
  bytes: number;
  durationSeconds: number;
  probe: ProbeResult;
}

/** Default final file name for a mode. */
export function finalFileName(mode: "video" | "audio"): string {
  return mode === "audio" ? "recording.m4a" : "recording.mp4";
}

/**
 * Stitches the manifest's periods in `dir` into `dir/{name}`.
 * @throws MeetrecError `finalize_failed` when there is nothing to stitch, ffmpeg fails, or the
 * result's duration differs from the segments' total by more than {@link DURATION_TOLERANCE_S}.
 * Segments are never touched, so a failed finalize can be retried.
 */
export async function finalize(dir: string, manifest: Manifest, opts: { ffmpegPath?: string; ffprobePath?: string; name?: string } = {}): Promise<FinalFile> {
  const periods = playablePeriods(manifest);
  if (periods.length === 0) throw new MeetrecError("finalize_failed", "No media segment was captured: nothing to finalize");
  const name = opts.name ?? finalFileName(manifest.mode);
  const list: string[] = ["ffconcat version 1.0"];
  for (const p of periods) {
    const one: Manifest = { ...manifest, periods: [p] };
    // Paths in the period playlist are relative to the playlist's own directory.
    const playlist = toHlsPlaylist(one, true, (f) => f.slice(f.indexOf("/") + 1));
    const file = join(dir, `p${p.index}`, "index.m3u8");
    await writeFile(file, playlist);
    list.push(`file '${file.replace(/'/g, "'\\''")}'`);
  }
  const listFile = join(dir, "finalize.ffconcat");
  await writeFile(listFile, list.join("\n") + "\n");
  const out = join(dir, name);
  const tmp = join(dir, `.${name}.partial${name.slice(name.lastIndexOf("."))}`);
  try {
    await run(opts.ffmpegPath ?? "ffmpeg", ["-hide_banner", "-loglevel", "error", "-nostdin", "-y",
      "-f", "concat", "-safe", "0", "-i", listFile, "-map", "0", "-c", "copy", "-movflags", "+faststart", tmp],
    { maxBuffer: 16 << 20 });
  } catch (err) {
    await rm(tmp, { force: true });
    throw new MeetrecError("finalize_failed", `Stitching ${periods.length} period(s) failed: ${(err as { stderr?: string }).stderr?.trim().slice(-800) || (err as Error).message}`, { cause: err });
  }
  const info = await probe(tmp, opts.ffprobePath);
  const expected = manifestDurationMs(manifest) / 1000;
  if (Math.abs(info.durationSeconds - expected) > DURATION_TOLERANCE_S) {
    await rm(tmp, { force: true });
    throw new MeetrecError("finalize_failed", `Stitched file lasts ${info.durationSeconds.toFixed(2)} s but its segments total ${expected.toFixed(2)} s (tolerance ${DURATION_TOLERANCE_S} s); segments kept for another try`);
  }
  await rename(tmp, out);
  await rm(listFile, { force: true });
  return { name, path: out, bytes: info.bytes, durationSeconds: info.durationSeconds, probe: info };
}
