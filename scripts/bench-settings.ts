/**
 * `make bench --only settings`: what each encoder setting costs and what it keeps, judged on
 * the same pictures. A recording of the meeting provides the display; a lossless grab of it
 * (raw `bgr0` frames in /dev/shm, `seconds` long) is the reference. Each setting then encodes
 * that reference at its real-time rate (`-re`, so threads and rate control behave as live):
 * CPU seconds per second of picture (ffmpeg's own `-benchmark` utime + stime: the pixel
 * conversion and the encoder, not the grab, which is the same for all), the bitrate, the frames
 * it kept, and SSIM against the reference (the file decoded, brought back to 30 fps the way a
 * player shows it — a dropped frame is the previous one held — and compared frame by frame).
 */
import { spawnSync } from "node:child_process";
import { readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { encoderArgs } from "../src/capture/index.js";

/** One setting under test: its name and its video arguments (input and output are the rig's). */
export interface Setting { name: string; args: string[] }

/** One setting measured on one reference. */
export interface SettingRow {
  setting: string;
  /** CPU s per s of picture (utime + stime of the encoding ffmpeg). */
  cores: number;
  /** Mean SSIM over all frames, all planes (Y weighted 4:1:1 as ffmpeg's `ssim` reports "All"). */
  ssim: number;
  /** Mean SSIM of luma. */
  ssimY: number;
  kbps: number;
  /** Frames in the file per frame of the reference (1 for constant frame rate). */
  kept: number;
  /** Set when the setting failed; then the figures are 0. */
  error?: string;
}

/** The video arguments meetrec's encoder uses at this size with this preset and these x264 options (built by `encoderArgs`, not copied). */
function meetrecVideoArgs(width: number, height: number, fps: number, bitrateKbps: number, x264Preset: string, x264Params: string): string[] {
  const live = encoderArgs({ mode: "video", display: ":0", width, height, fps, bitrateKbps, audioBitrateKbps: 128, monitor: "m", pulseServer: "p", segmentSeconds: 2, dir: "/nonexistent", x264Preset, x264Params });
  const from = live.indexOf("-r");
  const to = live.indexOf("-sc_threshold") + 2;
  if (from < 0 || to < 2) throw new Error("encoderArgs changed shape: -r … -sc_threshold not found");
  return live.slice(from, to);
}

/**
 * Variable frame rate: near-duplicate frames dropped before the encoder (mpdecimate, at least
 * one frame every `maxHeld + 1`), keyframes forced by time (every `segmentS`) instead of by count.
 */
function decimated(args: string[], fps: number, segmentS: number, maxHeld: number): string[] {
  const out: string[] = ["-filter:v", `mpdecimate=max=${maxHeld}`, "-fps_mode", "vfr"];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "-r" || args[i] === "-fps_mode") { i++; continue; }
    if (args[i] === "-g" || args[i] === "-keyint_min") { out.push(args[i], String(fps * segmentS * 10)); i++; continue; }
    out.push(args[i]);
  }
  return [...out, "-force_key_frames", `expr:gte(t,n_forced*${segmentS})`];
}

/**
 * The settings compared: meetrec's default first (`capture.x264Preset` / `x264Params` as
 * configured by default, passed in), then the x264 candidates that differ from it, variable
 * frame rate, and Nextcloud's recorder's VP8 last.
 */
export function settings(width: number, height: number, defaults: { x264Preset: string; x264Params: string }, fps = 30, bitrateKbps = 2500): Setting[] {
  const args = (preset: string, params = "") => meetrecVideoArgs(width, height, fps, bitrateKbps, preset, params);
  const name = (preset: string, params: string) => `x264 ${preset}${params ? ` (${params})` : ""}`;
  const held = Math.round(fps / 2) - 1; // at least 2 frames a second
  const x264: [string, string][] = [["veryfast", ""], ["superfast", ""], ["ultrafast", ""], ["ultrafast", "cabac=1"], ["ultrafast", "cabac=1:deblock=1"]];
  return [
    { name: `meetrec default: ${name(defaults.x264Preset, defaults.x264Params)}, zerolatency, CFR`, args: args(defaults.x264Preset, defaults.x264Params) },
    ...x264.filter(([p, o]) => p !== defaults.x264Preset || o !== defaults.x264Params).map(([p, o]) => ({ name: `${name(p, o)}, CFR`, args: args(p, o) })),
    { name: `${name("veryfast", "")}, VFR (mpdecimate, ≥ 2 fps)`, args: decimated(args("veryfast"), fps, 2, held) },
    { name: `${name("ultrafast", "cabac=1")}, VFR (mpdecimate, ≥ 2 fps)`, args: decimated(args("ultrafast", "cabac=1"), fps, 2, held) },
    { name: "Nextcloud recorder: VP8 realtime -crf 10 -b:v 1M", args: ["-c:v", "libvpx", "-quality:v", "realtime", "-crf", "10", "-b:v", "1M"] },
  ];
}

/**
 * Grabs `seconds` s of `display` losslessly into `file` (raw bgr0 frames). Returns the frame count.
 * @throws when ffmpeg fails or grabbed fewer than 90 % of the frames asked (the machine was too busy to be a reference).
 */
export function grabReference(display: string, width: number, height: number, fps: number, seconds: number, file: string): number {
  const r = spawnSync("ffmpeg", ["-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-thread_queue_size", String(fps * 2),
    "-f", "x11grab", "-draw_mouse", "0", "-framerate", String(fps), "-video_size", `${width}x${height}`, "-i", `${display}.0+0,0`,
    "-t", String(seconds), "-f", "rawvideo", "-pix_fmt", "bgr0", file], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`reference grab failed: ${r.stderr}`);
  const frames = statSync(file).size / (width * height * 4);
  if (frames < fps * seconds * 0.9) throw new Error(`reference grab kept ${frames} of ${fps * seconds} frames`);
  return frames;
}

/** Encodes the reference with one setting and measures it (see the file's docstring). */
export function measureSetting(ref: string, width: number, height: number, fps: number, frames: number, s: Setting, dir: string): SettingRow {
  const raw = ["-f", "rawvideo", "-pix_fmt", "bgr0", "-video_size", `${width}x${height}`, "-framerate", String(fps)];
  const vp8 = s.args.includes("libvpx");
  const out = join(dir, `setting.${vp8 ? "webm" : "mp4"}`);
  const zero = { setting: s.name, cores: 0, ssim: 0, ssimY: 0, kbps: 0, kept: 0 };
  try {
    const enc = spawnSync("ffmpeg", ["-hide_banner", "-nostdin", "-y", "-benchmark", "-re", ...raw, "-i", ref, ...s.args, "-an", out], { encoding: "utf8" });
    if (enc.status !== 0) return { ...zero, error: enc.stderr.trim().split("\n").at(-1) };
    const bench = /bench: utime=([\d.]+)s stime=([\d.]+)s/.exec(enc.stderr);
    if (!bench) return { ...zero, error: "no -benchmark line" };
    const seconds = frames / fps;
    const probe = JSON.parse(spawnSync("ffprobe", ["-v", "error", "-count_packets", "-select_streams", "v:0", "-show_entries", "stream=nb_read_packets", "-of", "json", out], { encoding: "utf8" }).stdout);
    const packets = Number(probe.streams?.[0]?.nb_read_packets ?? 0);
    // The file as a player shows it: 30 fps from its own timestamps (a dropped frame is the one before, held).
    const cmp = spawnSync("ffmpeg", ["-hide_banner", "-nostdin", "-i", out, ...raw, "-i", ref, "-lavfi",
      `[0:v]setpts=PTS-STARTPTS,fps=${fps},format=yuv420p[a];[1:v]setpts=PTS-STARTPTS,format=yuv420p[b];[a][b]ssim=shortest=1`, "-f", "null", "-"], { encoding: "utf8" });
    const ssim = /SSIM Y:([\d.]+).*All:([\d.]+)/.exec(cmp.stderr);
    if (!ssim) return { ...zero, error: `no SSIM: ${cmp.stderr.trim().split("\n").at(-1)}` };
    return {
      setting: s.name,
      cores: (Number(bench[1]) + Number(bench[2])) / seconds,
      ssim: Number(ssim[2]),
      ssimY: Number(ssim[1]),
      kbps: (statSync(out).size * 8) / 1000 / seconds,
      kept: packets / frames,
    };
  } finally {
    rmSync(out, { force: true });
  }
}

/** The display and the pulse server of a running meetrec encoder, read from its environment. */
export function encoderDisplay(encoderPid: number): string {
  const env = readFileSync(`/proc/${encoderPid}/environ`, "utf8").split("\0");
  const display = env.find((e) => e.startsWith("DISPLAY="))?.slice("DISPLAY=".length);
  if (display) return display;
  const args = readFileSync(`/proc/${encoderPid}/cmdline`, "utf8").split("\0");
  return args[args.indexOf("-i", args.indexOf("x11grab")) + 1].replace(/\.0\+0,0$/, "");
}
