/**
 * Checks on a recorded file's content: colours in sampled frames, energy of tones, motion.
 * Everything is decoded with ffmpeg; the maths is done here.
 */
import { execFileSync } from "node:child_process";

/** Decodes the frame at `t` seconds, scaled to `w`×`h` px, as packed RGB24. */
export function frameRgb(file: string, t: number, w = 320, h = 180): Buffer {
  return execFileSync("ffmpeg", ["-v", "error", "-ss", String(t), "-i", file, "-frames:v", "1",
    "-vf", `scale=${w}:${h}`, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], { maxBuffer: 64 << 20 });
}

/** Fraction (0–1) of pixels within `tol` (per channel) of `rgb`. */
export function colourFraction(frame: Buffer, rgb: [number, number, number], tol = 48): number {
  let n = 0;
  for (let i = 0; i < frame.length; i += 3) {
    if (Math.abs(frame[i] - rgb[0]) <= tol && Math.abs(frame[i + 1] - rgb[1]) <= tol && Math.abs(frame[i + 2] - rgb[2]) <= tol) n++;
  }
  return n / (frame.length / 3);
}

/** Mean absolute difference of two frames, 0–255. */
export function frameDiff(a: Buffer, b: Buffer): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]);
  return s / a.length;
}

/** Decodes the audio (mixed to mono, `rate` Hz) as float samples in [-1, 1]. */
export function audioSamples(file: string, rate = 16000, from = 0, duration?: number): Float32Array {
  const buf = execFileSync("ffmpeg", ["-v", "error", "-ss", String(from), "-i", file, ...(duration ? ["-t", String(duration)] : []),
    "-vn", "-ac", "1", "-ar", String(rate), "-f", "f32le", "-"], { maxBuffer: 256 << 20 });
  return new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4);
}

/** Power of `freq` Hz in `x` (Goertzel), normalised per sample. */
export function goertzel(x: Float32Array, rate: number, freq: number): number {
  const w = (2 * Math.PI * freq) / rate;
  const c = 2 * Math.cos(w);
  let s1 = 0, s2 = 0;
  for (let i = 0; i < x.length; i++) {
    const s0 = x[i] + c * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  return (s1 * s1 + s2 * s2 - c * s1 * s2) / (x.length * x.length);
}

/**
 * Level in dB of each tone relative to the mean of off-frequency probes (bins where nothing
 * should be): a clearly present tone is ≥ 20 dB above that floor.
 */
export function toneLevelsDb(x: Float32Array, rate: number, freqs: number[], probes = [300, 620, 1370, 2300, 3100]): number[] {
  const floor = probes.reduce((s, f) => s + goertzel(x, rate, f), 0) / probes.length + 1e-20;
  return freqs.map((f) => 10 * Math.log10(goertzel(x, rate, f) / floor));
}

/** RMS of the samples in dBFS. */
export function rmsDb(x: Float32Array): number {
  let s = 0;
  for (const v of x) s += v * v;
  return 10 * Math.log10(s / Math.max(1, x.length) + 1e-20);
}

/** Mean luma (0–255) of every frame, decoded at `fps`, with the frame times in s. */
export function lumaTrack(file: string, fps = 30): { t: number; luma: number }[] {
  const w = 32, h = 18;
  const buf = execFileSync("ffmpeg", ["-v", "error", "-i", file, "-an", "-vf", `fps=${fps},scale=${w}:${h}`, "-f", "rawvideo", "-pix_fmt", "gray", "-"], { maxBuffer: 256 << 20 });
  const out: { t: number; luma: number }[] = [];
  for (let i = 0; i * w * h < buf.length; i++) {
    let s = 0;
    for (let k = i * w * h; k < (i + 1) * w * h; k++) s += buf[k];
    out.push({ t: i / fps, luma: s / (w * h) });
  }
  return out;
}

/** Times (s) where `values` rises above `threshold` after being below it. */
export function onsets(track: { t: number; v: number }[], threshold: number): number[] {
  const out: number[] = [];
  for (let i = 1; i < track.length; i++) if (track[i - 1].v < threshold && track[i].v >= threshold) out.push(track[i].t);
  return out;
}

/** Energy of `freq` in consecutive windows of `windowS` seconds. */
export function toneTrack(x: Float32Array, rate: number, freq: number, windowS = 0.01): { t: number; v: number }[] {
  const n = Math.round(rate * windowS);
  const out: { t: number; v: number }[] = [];
  for (let i = 0; i + n <= x.length; i += n) out.push({ t: i / rate, v: goertzel(x.subarray(i, i + n), rate, freq) });
  return out;
}

/**
 * Audio-minus-video offsets (s) between each flash onset and the nearest beep onset
 * (positive: sound late).
 */
export function avOffsets(file: string, beepHz: number): number[] {
  const flashes = onsets(lumaTrack(file).map((f) => ({ t: f.t, v: f.luma })), 200);
  const rate = 16000;
  const tt = toneTrack(audioSamples(file, rate), rate, beepHz);
  const peak = Math.max(...tt.map((x) => x.v));
  const beeps = onsets(tt, peak * 0.1);
  return flashes.map((f) => {
    const b = beeps.reduce((best, x) => (Math.abs(x - f) < Math.abs(best - f) ? x : best), Infinity);
    return b - f;
  }).filter((d) => Math.abs(d) < 1);
}

/**
 * Fraction (0–1) of pixels near `rgb` in the frames at `t` and `t + 0.2` s, whichever is larger.
 * The sync page flashes white for 150 ms every 2 s, so one of two frames 0.2 s apart always shows
 * its background when the page is there.
 */
export function pageFraction(file: string, t: number, rgb: [number, number, number], tol = 48): number {
  return Math.max(colourFraction(frameRgb(file, t), rgb, tol), colourFraction(frameRgb(file, t + 0.2), rgb, tol));
}
