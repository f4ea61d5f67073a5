/**
 * What a viewer of a recorded file would notice, measured: every check is local in time (per
 * window of `WINDOW_S`) and in space (per publisher's tile), so a tone that stops after 5 %, one
 * frozen tile next to a moving one, or sound two seconds late cannot hide behind a whole-file
 * average. Everything is decoded with ffmpeg; the maths is done here. No vitest import: the
 * benchmarks use the same checks. `check*` functions throw an `Error` naming what a viewer would
 * see wrong (with the numbers); the other functions only measure.
 *
 * Longer than ~300 lines on purpose: it is the one place the suite's media thresholds live,
 * each next to the reason for it.
 */
import { execFileSync } from "node:child_process";
import { appendFileSync } from "node:fs";
import { BEEP_HZ, CLOCK_BITS, CLOCK_BLOCKS, CLOCK_UNIT_S } from "./sync-page.js";

/** The thresholds every media check uses, each with the reason for its value. */
export const LIMITS = {
  /** Window length, s, for every per-window check: short enough that a fault lasting a couple of seconds fails one. */
  windowS: 1,
  /**
   * A tone is present in a window when it stands ≥ 20 dB over the mean of off-frequency probe
   * bins. A playing Opus/AAC tone scores 35–60 dB; silence or another publisher's tone < 8 dB.
   */
  toneDb: 20,
  /**
   * Share of windows (while the source is in the meeting) that must hold the tone / motion /
   * colour: a window may miss at a join, a keyframe wait or a period boundary, never more.
   */
  coverage: 0.9,
  /** Per-channel tolerance (0–255) for "this pixel is the publisher's colour": H.264 at 4:2:0 shifts saturated colours by up to ~40. */
  colourTol: 48,
  /** A publisher's tile is on screen when ≥ 2 % of the frame is its colour (a 4-tile layout gives each ~10–20 %). */
  tileFraction: 0.02,
  /**
   * Motion in a tile: the largest mean absolute difference (0–255, RGB) inside the tile between
   * the window's first frame and any later frame in it. The fixture's moving square gives 3–15;
   * a frozen tile, compression noise only, < 0.5.
   */
  motionDiff: 1,
  /** ITU-R BT.1359-1 detectability: sound may lead the picture by ≤ 45 ms. */
  syncEarlyMs: 45,
  /** ITU-R BT.1359-1 detectability: sound may lag the picture by ≤ 125 ms. */
  syncLateMs: 125,
  /**
   * Measurement resolution of the beep onset, ms (10 ms Goertzel windows): a measured offset
   * can read up to this much later than the true one.
   */
  beepResolutionMs: 10,
  /**
   * Where a constant-rate file can put a grabbed frame, in frames after (positive) or before
   * its grab time: ffmpeg's rate conversion with the encoder's `-frame_drop_threshold 0.2`
   * keeps every frame within −0.5…+0.8 slot (docs/decisions.md "Frame slots and grabs"). It is
   * the file's own, constant within a run: a flash can read that much later or earlier than it
   * was drawn, on top of the grab's own sampling delay (`frameMs`). Each event's limit takes it
   * in; the run's median does not, so a run whose every event sits there still fails. It goes
   * once each period's slot phase is taken out at the stitch (not built).
   */
  slotLateFrames: 0.8,
  slotEarlyFrames: 0.5,
  /**
   * Sync is judged from this long after a run of the page begins, s: a measured fault, not a
   * tolerance to grow. Until issue 9's sink fix, sound led the picture by up to 124 ms for ~3 s
   * after every page load or encoder start (the recording's sink draining 2 s of latency,
   * docs/decisions.md "held at 20 ms"). What is left: the first event after an encoder start
   * (≈1 s in) can sound late — +47…+157 ms against +10…+20 ms later in the same file, measured
   * with 480×270@15 recordings beside two busy loops; on an idle machine it is in line. The
   * suspected cause is ffmpeg's pulse input stamping the sound that piled up while it started
   * from stale timing information (docs/testing.md).
   */
  syncSettleS: 1.5,
  /**
   * A run of the page shorter than this, s, need not hold a judged sync event: the settle time
   * plus the sync page's longest interval (2.9 s) and a flash.
   */
  syncMinRunS: 5.5,
  /** A flash and a beep further apart than this, s, are not candidates for one event. */
  pairWindowS: 0.5,
  /** The page clock counts as advancing in a window when it moved 1 s ± this, s. */
  clockToleranceS: 0.35,
  /**
   * The last page frame may be at most this long before the test's stop request, s: the
   * encoder's flush plus grab-to-file latency; a lost last segment (2 s) fails it.
   */
  tailS: 1,
} as const;

// ---------------------------------------------------------------------------------------------
// Decoding

/** Streams and duration of a file (ffprobe). */
export interface ProbeResult {
  durationS: number;
  video?: { codec: string; width: number; height: number; fps: number; startS: number };
  audio?: { codec: string; rate: number; channels: number };
}

/** Probes `file`. @throws Error when ffprobe fails (not a media file). */
export function probe(file: string): ProbeResult {
  const out = JSON.parse(execFileSync("ffprobe", ["-v", "error", "-print_format", "json", "-show_format", "-show_streams", file], { encoding: "utf8" }));
  const v = out.streams.find((s: any) => s.codec_type === "video");
  const a = out.streams.find((s: any) => s.codec_type === "audio");
  const fps = v ? frameRate(file, v) : 0;
  return {
    durationS: Number(out.format.duration),
    video: v ? { codec: v.codec_name, width: v.width, height: v.height, fps, startS: Number(v.start_time ?? 0) } : undefined,
    audio: a ? { codec: a.codec_name, rate: Number(a.sample_rate), channels: a.channels } : undefined,
  };
}

/**
 * The video's frame rate, fps: from its most common packet duration. Neither of ffprobe's
 * figures serves a file joined from periods: `r_frame_rate` reads 45 or 250 when the periods'
 * timestamps are offset by fractions of a frame (a 15 fps file measured with 45 judged its sync
 * a frame too strictly), and `avg_frame_rate` is lowered by the gaps between periods.
 */
function frameRate(file: string, v: { r_frame_rate?: string; avg_frame_rate?: string }): number {
  const out = execFileSync("ffprobe", ["-v", "error", "-select_streams", "v:0", "-show_entries", "packet=duration_time", "-of", "csv=p=0", file], { encoding: "utf8", maxBuffer: 64 << 20 });
  const counts = new Map<string, number>();
  for (const line of out.split("\n")) {
    const d = line.trim();
    if (d && Number(d) > 0) counts.set(d, (counts.get(d) ?? 0) + 1);
  }
  const mode = [...counts.entries()].sort((x, y) => y[1] - x[1])[0]?.[0];
  if (mode) return Math.round(1000 / Number(mode)) / 1000; // 0.066667 s → 15 fps, not 14.99992
  const rate = (x: unknown) => { const [n, d] = String(x ?? "0/1").split("/").map(Number); return d ? n / d : 0; };
  return rate(v.avg_frame_rate) || rate(v.r_frame_rate);
}

/** Decoded frames at a fixed rate: frame `i` shows file time `i / fps` s. */
export interface Frames {
  fps: number;
  /** Frame size, px. */
  w: number;
  h: number;
  count: number;
  /** Packed RGB24 of frame `i`. */
  at(i: number): Buffer;
}

/**
 * Decodes the whole video at `fps` (default 10), scaled to `w` px wide (default 320) and the
 * height that keeps the aspect ratio, as RGB24.
 * @throws Error when ffmpeg fails.
 */
export function decodeFrames(file: string, fps = 10, w = 320): Frames {
  const v = probe(file).video;
  if (!v) throw new Error(`${file} has no video stream`);
  const h = Math.round((w * v.height) / v.width / 2) * 2;
  const buf = execFileSync("ffmpeg", ["-v", "error", "-i", file, "-an", "-vf", `fps=${fps}:start_time=0,scale=${w}:${h}`,
    "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], { maxBuffer: 1 << 30 });
  const size = w * h * 3;
  return { fps, w, h, count: Math.floor(buf.length / size), at: (i) => buf.subarray(i * size, (i + 1) * size) };
}

/** Decodes the frame at `t` seconds, scaled to `w`×`h` px, as packed RGB24. */
export function frameRgb(file: string, t: number, w = 320, h = 180): Buffer {
  return execFileSync("ffmpeg", ["-v", "error", "-ss", String(t), "-i", file, "-frames:v", "1",
    "-vf", `scale=${w}:${h}`, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], { maxBuffer: 64 << 20 });
}

/** Decodes the audio (mixed to mono, `rate` Hz) as float samples in [-1, 1]. */
export function audioSamples(file: string, rate = 16000, from = 0, duration?: number): Float32Array {
  const buf = execFileSync("ffmpeg", ["-v", "error", "-ss", String(from), "-i", file, ...(duration ? ["-t", String(duration)] : []),
    "-vn", "-ac", "1", "-ar", String(rate), "-f", "f32le", "-"], { maxBuffer: 1 << 30 });
  return new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4);
}

// ---------------------------------------------------------------------------------------------
// Picture measures

/** A rectangle in a frame, px: columns `x0 ≤ x < x1`, rows `y0 ≤ y < y1`. */
export interface Box { x0: number; y0: number; x1: number; y1: number }

const near = (f: Buffer, i: number, rgb: readonly number[], tol: number) =>
  Math.abs(f[i] - rgb[0]) <= tol && Math.abs(f[i + 1] - rgb[1]) <= tol && Math.abs(f[i + 2] - rgb[2]) <= tol;

/** Fraction (0–1) of pixels within `tol` (per channel) of `rgb`, in `box` (default: the whole frame of width `w`). */
export function colourFraction(frame: Buffer, rgb: readonly [number, number, number], tol: number = LIMITS.colourTol, w?: number, box?: Box): number {
  if (!box || !w) {
    let n = 0;
    for (let i = 0; i < frame.length; i += 3) if (near(frame, i, rgb, tol)) n++;
    return n / (frame.length / 3);
  }
  let n = 0;
  for (let y = box.y0; y < box.y1; y++) for (let x = box.x0; x < box.x1; x++) if (near(frame, (y * w + x) * 3, rgb, tol)) n++;
  return n / Math.max(1, (box.x1 - box.x0) * (box.y1 - box.y0));
}

/** Mean absolute difference (0–255) of two frames of width `w`, over `box` (default all). */
export function frameDiff(a: Buffer, b: Buffer, w?: number, box?: Box): number {
  if (!box || !w) {
    let s = 0;
    for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]);
    return s / a.length;
  }
  let s = 0;
  for (let y = box.y0; y < box.y1; y++) {
    for (let i = (y * w + box.x0) * 3; i < (y * w + box.x1) * 3; i++) s += Math.abs(a[i] - b[i]);
  }
  return s / Math.max(1, (box.x1 - box.x0) * (box.y1 - box.y0) * 3);
}

/**
 * The tile showing `rgb` in a frame of `w`×`h` px: the rows and columns where the colour's pixel
 * count is ≥ a quarter of the busiest row's / column's (so stray matching pixels elsewhere on
 * the page do not stretch it). Undefined when the colour covers < `LIMITS.tileFraction`.
 */
export function findTile(frame: Buffer, w: number, h: number, rgb: readonly [number, number, number], tol: number = LIMITS.colourTol): Box | undefined {
  const cols = new Array<number>(w).fill(0);
  const rows = new Array<number>(h).fill(0);
  let n = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (near(frame, (y * w + x) * 3, rgb, tol)) { cols[x]++; rows[y]++; n++; }
    }
  }
  if (n / (w * h) < LIMITS.tileFraction) return undefined;
  const span = (v: number[]) => {
    const lim = Math.max(...v) / 4;
    const first = v.findIndex((c) => c >= lim);
    let last = v.length - 1;
    while (v[last] < lim) last--;
    return [first, last + 1];
  };
  const [x0, x1] = span(cols);
  const [y0, y1] = span(rows);
  return { x0, y0, x1, y1 };
}

// ---------------------------------------------------------------------------------------------
// Sound measures

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

/** Off-frequency probe bins, Hz: none of the fixtures' tones (440, 500, 700, 1000 Hz, beep 3000 Hz) or their harmonics. */
const PROBES = [300, 620, 1370, 2300, 3700];

/**
 * Level in dB of each tone relative to the mean of off-frequency probes (bins where nothing
 * should be): a clearly present tone is ≥ `LIMITS.toneDb` above that floor.
 */
export function toneLevelsDb(x: Float32Array, rate: number, freqs: number[], probes = PROBES): number[] {
  const floor = probes.reduce((s, f) => s + goertzel(x, rate, f), 0) / probes.length + 1e-20;
  return freqs.map((f) => 10 * Math.log10(goertzel(x, rate, f) / floor));
}

/** RMS of the samples in dBFS. */
export function rmsDb(x: Float32Array): number {
  let s = 0;
  for (const v of x) s += v * v;
  return 10 * Math.log10(s / Math.max(1, x.length) + 1e-20);
}

/** Level (dB over the probe floor) of `freq` in consecutive windows of `windowS` s; `t` is each window's start, s. */
export function toneWindows(x: Float32Array, rate: number, freq: number, windowS: number = LIMITS.windowS): { t: number; db: number }[] {
  const n = Math.round(rate * windowS);
  const out: { t: number; db: number }[] = [];
  for (let i = 0; i + n <= x.length; i += n) out.push({ t: i / rate, db: toneLevelsDb(x.subarray(i, i + n), rate, [freq])[0] });
  return out;
}

/** Energy of `freq` in consecutive windows of `windowS` seconds (for onsets). */
export function toneTrack(x: Float32Array, rate: number, freq: number, windowS = 0.01): { t: number; v: number }[] {
  const n = Math.round(rate * windowS);
  const out: { t: number; v: number }[] = [];
  for (let i = 0; i + n <= x.length; i += n) out.push({ t: i / rate, v: goertzel(x.subarray(i, i + n), rate, freq) });
  return out;
}

/** Times (s) where `v` rises to `threshold` after being below it, at least `minGapS` after the previous one. */
export function onsets(track: { t: number; v: number }[], threshold: number, minGapS = 0.5): number[] {
  const out: number[] = [];
  for (let i = 1; i < track.length; i++) {
    if (track[i - 1].v < threshold && track[i].v >= threshold && (!out.length || track[i].t - out[out.length - 1] >= minGapS)) out.push(track[i].t);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Per-window checks

/** A span of file time, s. */
export interface Span { from: number; to: number }

const fmtWindows = (ts: number[]) => ts.map((t) => t.toFixed(0)).join(", ");

/** True when the window starting at `t` s (`LIMITS.windowS` long) lies wholly inside one of `spans`. */
const windowInSpans = (spans: Span[], t: number) => spans.some((s) => t >= s.from - 1e-6 && t + LIMITS.windowS <= s.to + 1e-6);

/**
 * Checks that tone `hz` is present (≥ `LIMITS.toneDb`) in ≥ `coverage` of the `windowS` windows
 * inside `spans` (default: the whole file) — the time its source is in the meeting — and in the
 * last window of every span (no lost tail).
 * Returns the per-window levels. @throws Error listing the silent windows.
 */
export function checkTone(file: string, hz: number, opts: { spans?: Span[]; coverage?: number; label?: string; samples?: Float32Array } = {}): { t: number; db: number }[] {
  const rate = 16000;
  const x = opts.samples ?? audioSamples(file, rate);
  const spans = opts.spans ?? [{ from: 0, to: x.length / rate }];
  const all = toneWindows(x, rate, hz);
  const inside = all.filter((w) => windowInSpans(spans, w.t));
  const quiet = inside.filter((w) => w.db < LIMITS.toneDb);
  const need = opts.coverage ?? LIMITS.coverage;
  const label = opts.label ?? `${hz} Hz tone`;
  if (!inside.length) throw new Error(`${label}: no whole ${LIMITS.windowS} s window inside ${JSON.stringify(spans)} to judge`);
  // The last window of each span must sound: a file whose sound stops a second before its
  // picture (a lost tail) would otherwise pass on the other windows.
  for (const sp of spans) {
    const lastW = inside.filter((w) => windowInSpans([sp], w.t)).at(-1);
    if (lastW && lastW.db < LIMITS.toneDb) throw new Error(`${label}: silent in the last second before ${sp.to.toFixed(1)} s (${lastW.db.toFixed(0)} dB, need ≥ ${LIMITS.toneDb}): the sound stops before the picture`);
  }
  if ((inside.length - quiet.length) / inside.length < need) {
    throw new Error(`${label}: silent in ${quiet.length} of ${inside.length} windows (at ${fmtWindows(quiet.map((w) => w.t))} s; levels ${quiet.map((w) => w.db.toFixed(0)).join(", ")} dB, need ≥ ${LIMITS.toneDb})`);
  }
  return inside;
}

/** A publisher as the picture checks see it: its colour. */
export interface TileSpec { name: string; rgb: readonly [number, number, number] }

/**
 * Checks each publisher's tile window by window over `spans` (default: the whole file): its
 * colour is on screen and the picture inside its tile moves (`LIMITS.motionDiff`) in ≥ `coverage`
 * of the windows. `excludeBottomRows` drops the frame's bottom rows (px of the decoded frame) from the
 * motion measure (the sync page's clock strip moves by itself). @throws Error naming the publisher and the windows where it was missing or frozen.
 */
export function checkTiles(frames: Frames, publishers: TileSpec[], opts: { spans?: Span[]; coverage?: number; skipFrame?: (f: Buffer) => boolean; excludeBottomRows?: number } = {}): void {
  const per = Math.round(frames.fps * LIMITS.windowS);
  const spans = opts.spans ?? [{ from: 0, to: frames.count / frames.fps }];
  const need = opts.coverage ?? LIMITS.coverage;
  for (const p of publishers) {
    const missing: number[] = [];
    const frozen: number[] = [];
    let judged = 0;
    for (let i = 0; i + per <= frames.count; i += per) {
      const t = i / frames.fps;
      if (!windowInSpans(spans, t)) continue;
      judged++;
      const idx = Array.from({ length: per }, (_, k) => i + k).filter((k) => !opts.skipFrame?.(frames.at(k)));
      if (idx.length < 2) { frozen.push(t); continue; }
      const first = frames.at(idx[0]);
      const box = findTile(first, frames.w, frames.h, p.rgb);
      if (!box) { missing.push(t); continue; }
      if (opts.excludeBottomRows) box.y1 = Math.min(box.y1, frames.h - opts.excludeBottomRows);
      const motion = Math.max(...idx.slice(1).map((k) => frameDiff(first, frames.at(k), frames.w, box)));
      if (motion < LIMITS.motionDiff) frozen.push(t);
    }
    if (!judged) throw new Error(`${p.name}: no whole window inside ${JSON.stringify(spans)} to judge`);
    const bad = missing.length + frozen.length;
    if ((judged - bad) / judged < need) {
      throw new Error(`${p.name}'s tile: ${missing.length ? `missing at ${fmtWindows(missing)} s` : ""}${missing.length && frozen.length ? "; " : ""}${frozen.length ? `frozen at ${fmtWindows(frozen)} s` : ""} (${bad} of ${judged} windows)`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The sync page: its clock strip and its flash + beep events (dev/sync-page.ts)

/**
 * Reads the sync page's clock strip (bottom row) from an RGB24 frame of `w`×`h` px whose page fills the frame:
 * wall time in `CLOCK_UNIT_S` units modulo 2^20, or undefined when the strip is not there
 * (start block dark, check bits wrong: a blank display, another page, a torn frame).
 */
export function readClock(frame: Buffer, w: number, h: number): number | undefined {
  const b = w / CLOCK_BLOCKS;
  const bits: number[] = [];
  for (let i = 0; i < CLOCK_BITS; i++) {
    const x = Math.floor((i + 0.5) * b), y = Math.floor(h - b / 2);
    const k = (y * w + x) * 3;
    bits.push((frame[k] + frame[k + 1] + frame[k + 2]) / 3 > 128 ? 1 : 0);
  }
  if (bits[0] !== 1) return undefined;
  let v = 0;
  for (let i = 1; i <= 20; i++) v = v * 2 + bits[i];
  const check = bits[21] * 4 + bits[22] * 2 + bits[23];
  return v % 7 === check ? v : undefined;
}

/** Wall time (ms since the epoch) a clock value shows, unwrapped to the nearest `nearMs`. */
export function clockToMs(v: number, nearMs = Date.now()): number {
  const unit = CLOCK_UNIT_S * 1000, period = 2 ** 20 * unit;
  const base = nearMs - (nearMs % period);
  let t = base + v * unit;
  if (t - nearMs > period / 2) t -= period;
  if (nearMs - t > period / 2) t += period;
  return t;
}

/** A stretch of the file where the page is live: file time `from`–`to` s shows wall time `wallFromMs`–`wallToMs`. */
export interface PageRun { from: number; to: number; wallFromMs: number; wallToMs: number }

/** What the page clock says about a file. */
export interface PageTimeline {
  /** Continuous stretches of a live page (the clock advances with file time). */
  runs: PageRun[];
  /** Wall time (ms) each frame shows, or undefined where no clock is readable. */
  wallMs: (number | undefined)[];
  /** Windows (start s) where the clock did not advance by 1 s ± `LIMITS.clockToleranceS`: frozen, blank or jumping. */
  deadWindows: number[];
}

/**
 * Reads the page clock in every frame and splits the file into runs: a run ends where the clock
 * is unreadable, stands still (a frozen picture) or jumps (a gap, a period join, a reload).
 */
export function pageTimeline(frames: Frames, nearMs = Date.now()): PageTimeline {
  const wallMs = Array.from({ length: frames.count }, (_, i) => {
    const v = readClock(frames.at(i), frames.w, frames.h);
    return v === undefined ? undefined : clockToMs(v, nearMs);
  });
  const runs: PageRun[] = [];
  let cur: PageRun | undefined;
  const dt = 1000 / frames.fps;
  for (let i = 0; i < frames.count; i++) {
    const m = wallMs[i];
    const t = i / frames.fps;
    // A frame continues the run when its clock is where the run's pace predicts (±250 ms: the
    // clock's 100 ms unit, a frame's worth of grab jitter and a few frames of display latency).
    if (m !== undefined && cur && Math.abs(m - (cur.wallToMs + (t - cur.to) * 1000)) <= 250 + dt) {
      cur.to = t;
      cur.wallToMs = m;
      continue;
    }
    if (cur && cur.to > cur.from) runs.push(cur);
    cur = m === undefined ? undefined : { from: t, to: t, wallFromMs: m, wallToMs: m };
  }
  if (cur && cur.to > cur.from) runs.push(cur);
  for (const r of runs) {
    // A period's first frame is repeated until the grab delivers the next (~0.5 s): a still
    // start, not page time shown. The run begins where its clock first moves.
    let i = Math.round(r.from * frames.fps);
    while (i + 1 < frames.count && wallMs[i + 1] === wallMs[i] && (i + 1) / frames.fps < r.to) i++;
    r.from = i / frames.fps;
    r.to += 1 / frames.fps;
  }
  const deadWindows: number[] = [];
  const per = Math.round(frames.fps * LIMITS.windowS);
  for (let i = 0; i + per < frames.count; i += per) {
    const a = wallMs[i], b = wallMs[i + per];
    if (a === undefined || b === undefined || Math.abs((b - a) / 1000 - LIMITS.windowS) > LIMITS.clockToleranceS) deadWindows.push(i / frames.fps);
  }
  return { runs, wallMs, deadWindows };
}

/** Mean luma (0–255) of every frame, decoded at `fps` (default: the file's own rate), with the frame times in s. */
export function lumaTrack(file: string, fps = probe(file).video?.fps || 30): { t: number; luma: number }[] {
  const w = 32, h = 18;
  const buf = execFileSync("ffmpeg", ["-v", "error", "-i", file, "-an", "-vf", `fps=${fps}:start_time=0,scale=${w}:${h}`, "-f", "rawvideo", "-pix_fmt", "gray", "-"], { maxBuffer: 1 << 30 });
  const out: { t: number; luma: number }[] = [];
  for (let i = 0; (i + 1) * w * h <= buf.length; i++) {
    let s = 0;
    for (let k = i * w * h; k < (i + 1) * w * h; k++) s += buf[k];
    out.push({ t: i / fps, luma: s / (w * h) });
  }
  return out;
}

/** One sync event as the file shows it: flash onset and beep onset (file time, s), offset = beep − flash, ms. */
export interface SyncPair { flashS: number; beepS: number; offsetMs: number }

/** The sync page's events in a file, paired one to one. */
export interface SyncReport {
  pairs: SyncPair[];
  /** Flashes with no beep within `LIMITS.pairWindowS`, s. */
  lonelyFlashes: number[];
  /** Beeps with no flash within `LIMITS.pairWindowS`, s. */
  lonelyBeeps: number[];
  /** Video frame period, ms: a flash is first seen up to one frame after it was drawn. */
  frameMs: number;
}

/**
 * Finds every flash (whole-frame mean luma > 200, at the file's own frame rate) and every beep
 * (energy at `beepHz` in 10 ms windows above a tenth of the loudest), and pairs them one to one,
 * nearest first, within `LIMITS.pairWindowS`. The sync page's intervals all differ, so only the
 * true offset pairs every flash: a sound late by one interval leaves flashes lonely or offsets
 * scattered. `known` passes what the caller has already decoded (frame rate, mono 16 kHz samples).
 */
export function syncReport(file: string, beepHz: number = BEEP_HZ, known: { fps?: number; samples16k?: Float32Array } = {}): SyncReport {
  const fps = known.fps || probe(file).video?.fps || 30;
  const flashes = onsets(lumaTrack(file, fps).map((f) => ({ t: f.t, v: f.luma })), 200);
  const rate = 16000;
  const tt = toneTrack(known.samples16k ?? audioSamples(file, rate), rate, beepHz);
  const peak = Math.max(...tt.map((x) => x.v));
  const beeps = onsets(tt, peak * 0.1);
  const cands: SyncPair[] = [];
  for (const f of flashes) for (const b of beeps) if (Math.abs(b - f) <= LIMITS.pairWindowS) cands.push({ flashS: f, beepS: b, offsetMs: (b - f) * 1000 });
  cands.sort((a, b) => Math.abs(a.offsetMs) - Math.abs(b.offsetMs));
  const usedF = new Set<number>(), usedB = new Set<number>();
  const pairs: SyncPair[] = [];
  for (const c of cands) {
    if (usedF.has(c.flashS) || usedB.has(c.beepS)) continue;
    usedF.add(c.flashS); usedB.add(c.beepS); pairs.push(c);
  }
  pairs.sort((a, b) => a.flashS - b.flashS);
  return { pairs, lonelyFlashes: flashes.filter((f) => !usedF.has(f)), lonelyBeeps: beeps.filter((b) => !usedB.has(b)), frameMs: 1000 / fps };
}

/**
 * Checks sound against picture in every run of the page (`runs`, from `pageTimeline`), from
 * `LIMITS.syncSettleS` after the run begins: each run longer than `minRunS` (default `LIMITS.syncMinRunS`) holds a judged event; every pair
 * is inside BT.1359's limits widened by the measurement resolution and the file's frame slots
 * (early by `frameMs` × (1 + `LIMITS.slotLateFrames`) more, since a flash is first seen up to one
 * frame late and its slot may lie 0.8 frame later still; late by `LIMITS.beepResolutionMs` +
 * `frameMs` × `LIMITS.slotEarlyFrames` more); the run's median inside BT.1359's own; and no flash
 * or beep is left unpaired except within 0.5 s of a run's edge or inside `frozen` spans (an event cut by a join or the end).
 * @throws Error with every offset, in ms.
 */
export function checkSync(report: SyncReport, runs: PageRun[], minRunS: number = LIMITS.syncMinRunS, frozen: Span[] = []): void {
  const lo = -(LIMITS.syncEarlyMs + report.frameMs * (1 + LIMITS.slotLateFrames)), hi = LIMITS.syncLateMs + LIMITS.beepResolutionMs + report.frameMs * LIMITS.slotEarlyFrames;
  const settled = (t: number) => runs.some((r) => t >= r.from + LIMITS.syncSettleS && t <= r.to);
  const judged = report.pairs.filter((p) => settled(p.flashS));
  const all = judged.map((p) => Math.round(p.offsetMs));
  const where = `offsets ${all.join(", ")} ms; limits ${Math.round(lo)}…${hi} ms`;
  for (const p of judged) {
    if (p.offsetMs < lo || p.offsetMs > hi) throw new Error(`sound ${p.offsetMs < 0 ? "early" : "late"} by ${Math.abs(Math.round(p.offsetMs))} ms at ${p.flashS.toFixed(2)} s (${where})`);
  }
  // Only an event well inside a run must have its partner: one at a run's edge may be cut by the join or the end.
  // A frozen picture (a hung page) shows no flash while its sound goes on: those beeps are the freeze, already judged.
  const inside = (t: number) => runs.some((r) => t >= r.from + LIMITS.syncSettleS && t <= r.to - 0.5) && !frozen.some((f) => t >= f.from - 0.5 && t <= f.to + 0.5);
  const lonely = [...report.lonelyFlashes.filter(inside).map((t) => `flash at ${t.toFixed(2)} s`), ...report.lonelyBeeps.filter(inside).map((t) => `beep at ${t.toFixed(2)} s`)];
  if (lonely.length) throw new Error(`unpaired sync events: ${lonely.join(", ")} (${where})`);
  for (const r of runs) {
    // Only the live part counts: a frozen stretch (a hung page) draws no flash.
    const from = r.from + LIMITS.syncSettleS;
    const frozenS = frozen.reduce((sum, f) => sum + Math.max(0, Math.min(f.to, r.to) - Math.max(f.from, from)), 0);
    if (r.to - r.from - frozenS < minRunS) continue;
    const n = judged.filter((p) => p.flashS >= r.from && p.flashS <= r.to).length;
    if (n < 1) throw new Error(`no judged sync event in the page run ${r.from.toFixed(1)}–${r.to.toFixed(1)} s (${where})`);
  }
  if (all.length) {
    // The median with the flash's mean detection delay (half a frame) taken out is the best estimate of the true offset.
    // (An even count's median is the mean of the two middle offsets: the upper one alone read
    // two events 67/100 ms at 15 fps as 100, a third of a frame later than they were.)
    const sorted = [...judged.map((p) => p.offsetMs)].sort((a, b) => a - b);
    const half = Math.floor(sorted.length / 2);
    const median = sorted.length % 2 ? sorted[half] : (sorted[half - 1] + sorted[half]) / 2;
    const est = median + report.frameMs / 2;
    // Measurement aid: every judged file's offsets, one JSON line each (SYNC_CHECK_LOG=<file>).
    if (process.env.SYNC_CHECK_LOG) appendFileSync(process.env.SYNC_CHECK_LOG, `${JSON.stringify({ frameMs: Math.round(report.frameMs), est: Math.round(est), offsets: all })}\n`);
    if (est < -LIMITS.syncEarlyMs || est > LIMITS.syncLateMs) throw new Error(`median A/V offset ${Math.round(est)} ms is outside −${LIMITS.syncEarlyMs}…+${LIMITS.syncLateMs} ms (${where})`);
  }
}

/** Options of `checkPage`. */
export interface PageExpectation {
  /** The page's background colour. */
  bg: readonly [number, number, number];
  /** The page's steady tone, Hz (default 500). */
  toneHz?: number;
  /** Wall time (ms, the test's own clock) the test asked for the recording; the file may not show the page before it. */
  requestedAtMs: number;
  /** Wall time (ms) the test's stop request was answered (or the test saw the recording end); nothing after it. */
  endedByMs: number;
  /** Most page time, s, the viewer may miss between the first and the last frame (gaps of rejoins, take-overs; default 1.5). */
  maxMissingS?: number;
  /** Least page time, s, the file must show in all. */
  minShownS?: number;
  /** Wall time (ms) the test sent its stop request: the page must be shown until ≤ `LIMITS.tailS` before it (no lost tail). */
  stopSentAtMs?: number;
  /** Page time, s, that may stand still inside runs (a hung page before the watchdog acts; default: the coverage rule). */
  allowFrozenS?: number;
  /** Expect the sync events checked (default true). */
  sync?: boolean;
}

/** What `checkPage` measured, for further assertions. */
export interface PageReport extends PageTimeline {
  /** Page time shown in the file, s: the wall time the runs' clocks span (a frozen stretch adds nothing). */
  shownS: number;
  /** Wall time between the first and last page frame minus what was shown, s: what the viewer missed. */
  missingS: number;
  sync?: SyncReport;
  probe: ProbeResult;
}

/**
 * Everything a viewer of a recording of the sync page would check, against the test's own clock:
 * the page is on screen and live (its clock advances) in ≥ `LIMITS.coverage` of the windows of
 * each run, its tone sounds in the windows where the page is live, the square moves, sound is in
 * step with the picture in every run, the page time shown lies between the test's request and the
 * stop, and the time missing inside it is ≤ `maxMissingS`.
 * @throws Error describing the first thing wrong.
 */
export function checkPage(file: string, exp: PageExpectation): PageReport {
  const info = probe(file);
  if (!info.video) throw new Error("no video stream");
  if (!info.audio) throw new Error("no audio stream");
  const frames = decodeFrames(file);
  const tl = pageTimeline(frames, exp.endedByMs);
  if (!tl.runs.length) throw new Error("the page's clock is never readable: the page is not on screen");
  const shownS = tl.runs.reduce((s, r) => s + (r.wallToMs - r.wallFromMs) / 1000, 0);
  const first = tl.runs[0].wallFromMs, last = tl.runs[tl.runs.length - 1].wallToMs;
  const missingS = (last - first) / 1000 - shownS;
  const slack = 500; // the clock unit, grab-to-file latency and a frame
  if (first < exp.requestedAtMs - slack) throw new Error(`the file shows the page at ${new Date(first).toISOString()}, before the test asked for the recording (${new Date(exp.requestedAtMs).toISOString()})`);
  if (last > exp.endedByMs + slack) throw new Error(`the file shows the page at ${new Date(last).toISOString()}, after the recording ended (${new Date(exp.endedByMs).toISOString()})`);
  if (missingS > (exp.maxMissingS ?? 1.5)) throw new Error(`the viewer misses ${missingS.toFixed(1)} s of the page between its first and last frame (runs ${JSON.stringify(tl.runs.map((r) => [r.from.toFixed(1), r.to.toFixed(1)]))})`);
  if (exp.stopSentAtMs !== undefined && last < exp.stopSentAtMs - LIMITS.tailS * 1000) throw new Error(`the file's last page frame shows ${new Date(last).toISOString()}, ${((exp.stopSentAtMs - last) / 1000).toFixed(1)} s before the test asked to stop (${new Date(exp.stopSentAtMs).toISOString()}): the tail is lost`);
  if (exp.minShownS !== undefined && shownS < exp.minShownS) throw new Error(`the file shows ${shownS.toFixed(1)} s of the page, expected ≥ ${exp.minShownS} s`);
  const spans: Span[] = tl.runs.map((r) => ({ from: r.from, to: r.to }));
  // The page is in the meeting from the start of a run to the end of the last run less than 1 s
  // after it (a stuttering page breaks runs but is there); a longer break is a gap (a rejoin's blank screen).
  const present: Span[] = [];
  for (const r of tl.runs) {
    const p = present[present.length - 1];
    if (p && r.from - p.to < 1) p.to = r.to;
    else present.push({ from: r.from, to: r.to });
  }
  const windows = Math.floor((frames.count - 1) / (frames.fps * LIMITS.windowS));
  const inRuns = (t: number) => windowInSpans(spans, t);
  const dead = tl.deadWindows.filter(inRuns);
  const live = Array.from({ length: windows }, (_, i) => i * LIMITS.windowS).filter(inRuns);
  const deadOk = exp.allowFrozenS !== undefined ? dead.length <= Math.ceil(exp.allowFrozenS / LIMITS.windowS) + 1 : (live.length - dead.length) / live.length >= LIMITS.coverage;
  if (live.length && !deadOk) throw new Error(`the page's clock stands still or jumps in windows at ${fmtWindows(dead)} s`);
  const rate = 16000;
  const samples = audioSamples(file, rate);
  checkTone(file, exp.toneHz ?? 500, { spans: present, samples, label: "the page's tone" });
  const strip = Math.ceil(frames.w / CLOCK_BLOCKS) + 1;
  const coverage = exp.allowFrozenS !== undefined && live.length ? Math.max(0, 1 - (Math.ceil(exp.allowFrozenS / LIMITS.windowS) + 1) / live.length) : undefined;
  checkTiles(frames, [{ name: "the page", rgb: exp.bg }], { spans, coverage, excludeBottomRows: strip, skipFrame: (f) => meanLuma(f) > 200 });
  let sync: SyncReport | undefined;
  if (exp.sync !== false) {
    sync = syncReport(file, BEEP_HZ, { fps: info.video.fps, samples16k: samples });
    checkSync(sync, tl.runs, undefined, dead.map((t) => ({ from: t, to: t + LIMITS.windowS })));
  }
  return { ...tl, shownS, missingS, sync, probe: info };
}

function meanLuma(f: Buffer): number {
  let s = 0;
  for (let i = 0; i < f.length; i += 3) s += f[i] + f[i + 1] + f[i + 2];
  return s / f.length;
}

/**
 * Fraction (0–1) of pixels near `rgb` in the frames at `t` and `t + 0.2` s, whichever is larger
 * (one of two frames 0.2 s apart shows the sync page's background even during a flash).
 */
export function pageFraction(file: string, t: number, rgb: [number, number, number], tol: number = LIMITS.colourTol): number {
  return Math.max(colourFraction(frameRgb(file, t), rgb, tol), colourFraction(frameRgb(file, t + 0.2), rgb, tol));
}

/** A meeting publisher as the checks see it: its colour and its tone. */
export interface PublisherLook extends TileSpec { toneHz: number }

/**
 * Everything a viewer of a meeting recording would check, window by window over `spans`
 * (default: the whole file): each publisher's tile on screen and moving, each publisher's tone
 * sounding (audio-only files: the tones only). @throws Error naming the publisher and windows.
 */
export function checkMeeting(file: string, publishers: PublisherLook[], opts: { spans?: Span[] } = {}): ProbeResult {
  const info = probe(file);
  if (!info.audio) throw new Error("no audio stream");
  if (info.video) checkTiles(decodeFrames(file), publishers, { spans: opts.spans });
  const samples = audioSamples(file, 16000);
  for (const p of publishers) checkTone(file, p.toneHz, { spans: opts.spans, samples, label: `${p.name}'s ${p.toneHz} Hz tone` });
  return info;
}
