/**
 * `make bench`: measures the recording pipeline on this machine and prints a Markdown report
 * (copy it into docs/benchmarks.md with the machine and the command). Every figure it prints
 * comes from a file it recorded in the same run and checked for content (streams present,
 * each publisher's colour in sampled frames, each publisher's tone; dev/media-check.ts).
 * A row whose file fails the check prints the reason instead of figures.
 *
 * - Versions: CPU model, cores, memory, kernel, and the Debian packages / binaries used.
 * - A/V offset of the capture chain itself (no browser): a white X root window (`xsetroot`)
 *   and a 3 kHz beep into the sink at the same instant, at irregular intervals; every offset
 *   (sound minus picture, ms) with min/median/max against ITU-R BT.1359's detectability limits.
 * - Whole-session CPU (cores = CPU s per recorded s: Xvfb + every browser process + ffmpeg) and
 *   peak memory (MiB, sum of PSS) for a 2-publisher Janus meeting at 1280×720@30,
 *   1920×1080@30 and audio-only, each with flat and with high-motion publishers
 *   (dev/fake-media.ts), side by side.
 * - Encoder only: meetrec's ffmpeg next to an ffmpeg with Nextcloud's recorder settings
 *   (VP8 realtime, -crf 10 -b:v 1M, Opus, WebM) grabbing the same 1920×1080 display and sink,
 *   with the same raw input queues as meetrec's encoder (read from its command line), for both
 *   kinds of publishers.
 * - Start latency, s: POST /v1/recordings → first media segment durable, with the join steps
 *   of docs/benchmarks.md (the fixture's full steps: both remote pictures have frames); only
 *   runs whose recording completed and whose file passed the content check count.
 *
 * - Concurrency: N = 1…4 recordings at once, distinct pictures per second in each file and the
 *   encoder's own frame counts (whether meetrec notices an overloaded machine).
 *
 * - Encoder settings (`settings`, scripts/bench-settings.ts): x264 presets, constant vs variable
 *   frame rate, and Nextcloud's VP8, each encoding the same lossless grab of the meeting (flat
 *   and high-motion, 720p and 1080p): CPU per second of picture, SSIM against the grab, bitrate.
 *
 * - Chromium switches (`flags`): the same recording with each set of `capture.chromiumArgs` in
 *   turn; browser and whole-session cores and memory.
 *
 * `--only av|sessions|latency|watcher|tracks|concurrency|settings|flags` runs one part (for development;
 * `sessions` includes the encoder comparison). Needs root (the meeting's network namespace).
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { Encoder, PulseServer, XvfbDisplay } from "../src/capture/index.js";
import { parseConfig } from "../src/config/index.js";
import { DEFAULT_PUBLISHERS, HIGH_MOTION_PUBLISHERS, type PublisherSpec } from "../dev/fake-media.js";
import { startMeeting, type Meeting } from "../dev/meeting.js";
import { audioSamples, checkPage, colourFraction, frameRgb, lumaTrack, toneLevelsDb, toneTrack } from "../dev/media-check.js";
import { startSyncPage } from "../dev/sync-page.js";
import { startServer, type TestServer } from "../dev/server.js";
import { cpuSeconds, processTree } from "../src/util/proc.js";
import { encoderDisplay, grabReference, measureSetting, settings, type SettingRow } from "./bench-settings.js";

const TERMINAL = ["completed", "failed", "aborted"];
/** meetrec's capture settings by default (what every session here records with). */
const DEFAULT_CAPTURE = parseConfig({}).capture;
/** The default x264 setting, as the report names it. */
const X264 = `x264 ${DEFAULT_CAPTURE.x264Preset}${DEFAULT_CAPTURE.x264Params ? ` (${DEFAULT_CAPTURE.x264Params})` : ""}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
/** Wall clock with sub-ms resolution, ms since the epoch (the clock the encoder's origin uses). */
const wallMs = () => performance.timeOrigin + performance.now();

// ───────────────────────────── process accounting ─────────────────────────────

/** Proportional set size of `pid`, bytes (0 when gone). */
function pssBytes(pid: number): number {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"));
    return m ? Number(m[1]) * 1024 : 0;
  } catch { return 0; }
}

/** What {@link measure} found. */
interface Usage {
  /** CPU seconds per wall second over the window (= cores busy). */
  cores: number;
  /** Largest sum of PSS over the process trees seen in the window, MiB. */
  peakPssMiB: number;
}

/** Samples process trees every 500 ms for `windowMs` ms: CPU over the window and peak PSS. */
async function measure(roots: () => number[], windowMs: number): Promise<Usage> {
  const seen = new Map<number, number>();
  const start = new Map<number, number>();
  for (const p of processTree(roots())) start.set(p, cpuSeconds(p));
  const t0 = Date.now();
  let peak = 0;
  while (Date.now() - t0 < windowMs) {
    const pids = processTree(roots());
    for (const p of pids) { if (!start.has(p)) start.set(p, 0); seen.set(p, cpuSeconds(p)); }
    peak = Math.max(peak, pids.reduce((s, p) => s + pssBytes(p), 0));
    await sleep(500);
  }
  const wall = (Date.now() - t0) / 1000;
  let cpu = 0;
  for (const [p, end] of seen) cpu += end - (start.get(p) ?? 0);
  return { cores: cpu / wall, peakPssMiB: peak / 1048576 };
}

// ───────────────────────────── content checks ─────────────────────────────

interface Probe { format: { duration: string }; streams: { codec_type: string; codec_name: string; start_time: string }[] }

function ffprobe(file: string): Probe {
  return JSON.parse(execFileSync("ffprobe", ["-v", "error", "-print_format", "json", "-show_format", "-show_streams", file], { encoding: "utf8" }));
}

/**
 * Whole-frame colour fraction a publisher's tile must reach in a recorded frame (tolerance 48
 * per channel): the e2e tests' 0.02 for flat publishers, half of it for high-motion ones (about
 * half of their pixels are within the tolerance; fake-media.ts).
 */
const colourThreshold = (p: PublisherSpec) => (p.motion === "high" ? 0.01 : 0.02);
/** A tone counts as present this many dB over the off-frequency floor (as in the e2e tests). */
const TONE_DB = 20;

/** Result of {@link checkContent}: `ok`, and what was found (for the report). */
interface Check { ok: boolean; detail: string }

/**
 * Checks a recorded file: a video stream (unless `audioOnly`) and an audio stream, each
 * publisher's colour in the frames at 40 % and 80 % of the duration, each publisher's tone.
 */
function checkContent(file: string, publishers: PublisherSpec[], audioOnly = false): Check {
  const problems: string[] = [];
  let probe: Probe;
  try { probe = ffprobe(file); } catch (err) { return { ok: false, detail: `ffprobe failed: ${(err as Error).message.slice(0, 200)}` }; }
  const codecs = probe.streams.map((s) => `${s.codec_type}:${s.codec_name}`);
  const duration = Number(probe.format.duration);
  if (!audioOnly && !probe.streams.some((s) => s.codec_type === "video")) problems.push("no video stream");
  if (!probe.streams.some((s) => s.codec_type === "audio")) problems.push("no audio stream");
  const parts = [`${codecs.join("+")}, ${duration.toFixed(1)} s`];
  if (!audioOnly && problems.length === 0) {
    const mins = publishers.map(() => 1);
    for (const t of [0.4, 0.8].map((x) => x * duration)) {
      const f = frameRgb(file, t);
      publishers.forEach((p, i) => { mins[i] = Math.min(mins[i], colourFraction(f, p.rgb)); });
    }
    publishers.forEach((p, i) => { if (mins[i] <= colourThreshold(p)) problems.push(`${p.name}'s colour ${mins[i].toFixed(3)} ≤ ${colourThreshold(p)}`); });
    parts.push(`colours ${mins.map((m) => m.toFixed(3)).join("/")}`);
  }
  if (problems.length === 0) {
    const levels = toneLevelsDb(audioSamples(file, 16000), 16000, publishers.map((p) => p.toneHz));
    publishers.forEach((p, i) => { if (!(levels[i] > TONE_DB)) problems.push(`${p.name}'s ${p.toneHz} Hz tone ${levels[i].toFixed(0)} dB ≤ ${TONE_DB}`); });
    parts.push(`tones ${levels.map((l) => l.toFixed(0)).join("/")} dB`);
  }
  return { ok: problems.length === 0, detail: problems.length ? `FAILED: ${problems.join("; ")}` : parts.join(", ") };
}

/** Downloads a recording's file into `dir`. */
async function download(server: TestServer, id: string, dir: string): Promise<string> {
  const r = await server.api("GET", `/v1/recordings/${id}/file`);
  if (r.status !== 200) throw new Error(`GET file of ${id}: ${r.status}`);
  const file = join(dir, `${id}.mp4`);
  writeFileSync(file, r.body);
  return file;
}

// ───────────────────────────── A/V rig ─────────────────────────────

const BEEP_HZ = 3000;
const FLASH_MS = 150;
const RATE = 48000;
/**
 * Sound written this far ahead of its play-out time, ms. It only has to outlast the longest
 * event-loop stall (a stall past it is an underrun, counted); it shifts nothing, since a sample's
 * play-out time is fixed by its position in the stream.
 */
const LEAD_MS = 100;
/**
 * pacat's buffer, ms: large enough that it never underruns on a busy machine; like the lead it
 * shifts nothing, because t0 is when the stream started playing.
 */
const PACAT_LATENCY_MS = 50;
/** Pacer tick, ms. */
const TICK_MS = 5;
/**
 * Event times after the rig's start, s. The gaps (1.15, 0.9, 1.7, 0.65, 1.85 s) are irregular
 * and none is a multiple of the 2 s segment, so a flash can only be paired with its own beep.
 */
const AV_EVENTS_S = [0.6, 1.75, 2.65, 4.35, 5.0, 6.85];
/** ITU-R BT.1359 detectability thresholds: sound at most 45 ms early, 125 ms late. */
const ITU_EARLY_MS = 45;
const ITU_LATE_MS = 125;

/**
 * Plays into a sink from a pacat started ahead of time: silence written in real time, 100 ms
 * ahead of play-out (so pacat's start-up is over before any event), and beeps written into that
 * stream at given sample positions — a beep due at wall time T is the sample (T − t0) × 48 kHz
 * of a stream whose first sample played at t0. pacat (`-v`) reports underruns, which would
 * delay the sound behind the schedule; they are counted.
 */
class PacedSound {
  private readonly child: ChildProcess;
  private t0 = 0;
  private written = 0;
  private timer?: NodeJS.Timeout;
  private readonly beeps: number[] = [];
  /** Underruns pacat reported (each delays the sound behind the schedule). */
  underruns = 0;
  /** Largest stream latency pacat reported once playing, ms (its buffer + the sink's). */
  maxLatencyMs = 0;
  /** pacat spawn → its stream playing, ms (outside every measurement). */
  startupMs = 0;

  private constructor(child: ChildProcess) { this.child = child; }

  /**
   * Starts pacat on `sink`, writes 100 ms of silence (more than the stream's 50 ms prebuffer) and
   * resolves once pacat reports that the stream started playing; from then on silence is
   * written in real time, and sample k plays at t0 + k / 48 kHz.
   */
  static async start(sink: string, env: NodeJS.ProcessEnv): Promise<PacedSound> {
    const child = spawn("pacat", ["-v", "--raw", "--format=s16le", `--rate=${RATE}`, "--channels=2", `--latency-msec=${PACAT_LATENCY_MS}`, "-d", sink],
      { env, stdio: ["pipe", "ignore", "pipe"] });
    child.stdin!.on("error", () => undefined); // pacat gone: its exit is reported below
    const s = new PacedSound(child);
    const spawned = wallMs();
    await new Promise<void>((resolve, reject) => {
      let err = "";
      let created = false;
      const timer = setTimeout(() => reject(new Error(`pacat's stream did not start in 10 s: ${err.slice(-500)}`)), 10_000);
      child.stderr!.on("data", (d: Buffer) => {
        err = (err + String(d)).slice(-4000);
        s.underruns += (String(d).match(/Stream underrun/g) ?? []).length;
        for (const m of String(d).matchAll(/Latency: (\d+) usec/g)) if (s.t0) s.maxLatencyMs = Math.max(s.maxLatencyMs, Number(m[1]) / 1000);
        if (!created && /Stream successfully created/.test(err)) {
          created = true;
          child.stdin!.write(Buffer.alloc(Math.round((LEAD_MS / 1000) * RATE) * 4));
        }
        if (!s.t0 && /Stream started/.test(err)) {
          clearTimeout(timer);
          s.t0 = wallMs();
          s.startupMs = s.t0 - spawned;
          s.written = Math.round((LEAD_MS / 1000) * RATE);
          s.timer = setInterval(() => s.pump(), TICK_MS);
          resolve();
        }
      });
      child.once("exit", (c) => { clearTimeout(timer); if (!s.t0) reject(new Error(`pacat exited ${c}: ${err.slice(-500)}`)); });
    });
    return s;
  }

  /** Schedules a 150 ms beep to sound at wall time `atMs` (≥ 100 ms ahead). */
  beepAt(atMs: number): void { this.beeps.push(Math.round(((atMs - this.t0) / 1000) * RATE)); }

  private pump(): void {
    const due = Math.floor(((wallMs() - this.t0 + LEAD_MS) / 1000) * RATE);
    if (due <= this.written) return;
    const n = due - this.written;
    const buf = Buffer.alloc(n * 4);
    const len = Math.round((FLASH_MS / 1000) * RATE);
    for (const b of this.beeps) {
      for (let k = Math.max(b, this.written); k < Math.min(b + len, due); k++) {
        const v = Math.round(0.5 * 32767 * Math.sin((2 * Math.PI * BEEP_HZ * (k - b)) / RATE));
        buf.writeInt16LE(v, (k - this.written) * 4);
        buf.writeInt16LE(v, (k - this.written) * 4 + 2);
      }
    }
    this.child.stdin!.write(buf);
    this.written = due;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    this.child.stdin!.end();
    this.child.kill("SIGTERM");
    await new Promise((r) => (this.child.exitCode === null ? this.child.once("exit", r) : r(null)));
  }
}

/** Runs `xsetroot -solid colour`; resolves with its start and end, wall ms. */
function setRoot(colour: string, env: NodeJS.ProcessEnv): Promise<{ from: number; to: number }> {
  const from = wallMs();
  return new Promise((resolve, reject) => {
    const c = spawn("xsetroot", ["-solid", colour], { env, stdio: "ignore" });
    c.once("error", reject);
    c.once("exit", () => resolve({ from, to: wallMs() }));
  });
}

/** Waits until wall time `atMs` (timer, then a short spin for the last 2 ms). */
async function until(atMs: number): Promise<void> {
  const ahead = atMs - wallMs() - 2;
  if (ahead > 0) await sleep(ahead);
  while (wallMs() < atMs) { /* spin */ }
}

/** Times (s) where a track rises to `threshold` after being below it. */
function rises(track: { t: number; v: number }[], threshold: number): number[] {
  const out: number[] = [];
  for (let i = 1; i < track.length; i++) if (track[i - 1].v < threshold && track[i].v >= threshold) out.push(track[i].t);
  return out;
}

/** Result of the A/V rig. */
interface AvResult {
  /** Sound minus picture per event, ms (positive: sound late), in event order. */
  offsetsMs: number[];
  /** Runs whose flashes and beeps could not be paired one-to-one (with why). */
  failures: string[];
  /** Time each xsetroot took to run (its root change lands within it, near its end), ms. */
  xsetrootMs: number[];
  /** Largest lateness of a flash trigger behind its scheduled instant, ms. */
  triggerLateMaxMs: number;
  underruns: number;
  /** Largest stream latency pacat reported, ms (how long a written beep waits in pacat + the sink). */
  pacatLatencyMaxMs: number;
  /** Longest pacat start (spawn → playing), ms: before the encoder starts, outside every offset. */
  pacatStartupMaxMs: number;
  audioDelayMs: number;
}

/**
 * A/V offset of display grab + sink monitor capture with no browser. The display (640×360) and
 * pacat's stream are up before the encoder starts; once frames flow, each event turns the root
 * window white for 150 ms (xsetroot, spawned at the scheduled instant) and sounds a 150 ms
 * beep due at the same instant on the pacer's sample clock. In the encoder's output the n-th
 * flash onset (luma ≥ 200, 30 fps track) is paired with the n-th beep onset (3 kHz energy ≥ 10 %
 * of its peak, 10 ms windows); a run whose counts differ from the schedule counts as a failure.
 * Resolution: one frame (33 ms) for the picture, 10 ms for the sound.
 */
async function avRig(runs = 3): Promise<AvResult> {
  const audioDelayMs = DEFAULT_CAPTURE.audioDelayMs;
  const dir = mkdtempSync(join(tmpdir(), "meetrec-bench-av-"));
  const pulse = await PulseServer.ensure(join(dir, "pulse"));
  const sink = await pulse.createSink("meetrec_bench_av");
  const display = await XvfbDisplay.start({ width: 640, height: 360 });
  const env = { ...process.env, DISPLAY: display.name, PULSE_SERVER: pulse.server };
  const res: AvResult = { offsetsMs: [], failures: [], xsetrootMs: [], triggerLateMaxMs: 0, underruns: 0, pacatLatencyMaxMs: 0, pacatStartupMaxMs: 0, audioDelayMs };
  try {
    for (let run = 0; run < runs; run++) {
      const out = join(dir, `r${run}`);
      mkdirSync(out, { recursive: true });
      await setRoot("#2060c0", env);
      const sound = await PacedSound.start(sink.name, env);
      const enc = new Encoder({ mode: "video", display: display.name, width: 640, height: 360, fps: 30, bitrateKbps: 1000, audioBitrateKbps: 128, audioDelayMs,
        monitor: sink.monitor, pulseServer: pulse.server, segmentSeconds: 2, x264Preset: DEFAULT_CAPTURE.x264Preset, x264Params: DEFAULT_CAPTURE.x264Params, dir: out });
      const files: string[] = [];
      enc.on("init", (p: string) => files.unshift(p));
      enc.on("segment", (s: { path: string }) => files.push(s.path));
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error("A/V rig: no frames in 10 s")), 10_000);
        enc.once("media", () => { clearTimeout(t); resolve(); });
      });
      // Each run shifts the schedule by 0.37 s against the frame and segment grid.
      const base = wallMs() + 1000 + run * 370;
      const events = AV_EVENTS_S.map((s) => base + s * 1000);
      for (const at of events) sound.beepAt(at);
      const underrunsBefore = sound.underruns;
      for (const at of events) {
        await until(at);
        const on = await setRoot("white", env);
        res.triggerLateMaxMs = Math.max(res.triggerLateMaxMs, on.from - at);
        res.xsetrootMs.push(on.to - on.from);
        await until(at + FLASH_MS);
        await setRoot("#2060c0", env);
      }
      await sleep(1000);
      res.underruns += sound.underruns - underrunsBefore;
      await enc.stop();
      res.pacatLatencyMaxMs = Math.max(res.pacatLatencyMaxMs, sound.maxLatencyMs);
      res.pacatStartupMaxMs = Math.max(res.pacatStartupMaxMs, sound.startupMs);
      await sound.close();
      const file = join(out, "all.mp4");
      writeFileSync(file, Buffer.concat(files.map((f) => readFileSync(f))));
      const flashes = rises(lumaTrack(file).map((f) => ({ t: f.t, v: f.luma })), 200);
      const tt = toneTrack(audioSamples(file, 16000), 16000, BEEP_HZ);
      const beeps = rises(tt, Math.max(...tt.map((x) => x.v)) * 0.1);
      if (flashes.length !== events.length || beeps.length !== events.length) {
        const ts = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(" ");
        res.failures.push(`run ${run + 1}: ${flashes.length} flashes (at ${ts(flashes)} s) and ${beeps.length} beeps (at ${ts(beeps)} s) for ${events.length} events`);
        continue;
      }
      // The luma track counts from the file's start (its first frame is repeated back to it), the
      // samples from the audio stream's own start: both onto the file's timeline.
      const starts = ffprobe(file).streams.map((x) => ({ type: x.codec_type, start: Number(x.start_time) }));
      const audioLead = starts.find((x) => x.type === "audio")!.start - Math.min(...starts.map((x) => x.start));
      res.offsetsMs.push(...flashes.map((f, i) => (beeps[i] + audioLead - f) * 1000));
    }
  } finally {
    await display.close();
    await sink.close();
    await pulse.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return res;
}

// ───────────────────────────── meeting sessions ─────────────────────────────

/** The recorder's pids (display, browser, encoder) once it is recording. */
async function sessionPids(server: TestServer, id: string): Promise<number[]> {
  const rec = await server.waitFor(id, (r) => r.status === "recording" || TERMINAL.includes(r.status), 60_000);
  if (rec.status !== "recording") throw new Error(`recording ${id} ended ${rec.status}: ${JSON.stringify(rec.error)}`);
  const pids = rec.events.find((e: any) => e.status === "recording").data.pids;
  return [pids.display, pids.browser, pids.encoder].filter(Boolean);
}

/** One measured session and its file's check. */
interface SessionRow {
  usage: Usage;
  status: string;
  kibPerSecond: number;
  /** The file's duration, s. */
  fileS: number;
  /** Capture window, s: first encoder start (`period_started`) → the stop reaching it (`stopping`); the most the file could hold. */
  windowS: number;
  check: Check;
}

/** Capture window of a finished recording, s (see {@link SessionRow.windowS}). */
function captureWindowS(rec: any): number {
  const from = rec.events.find((e: any) => e.type === "period_started")?.at;
  const to = rec.events.find((e: any) => e.status === "stopping")?.at;
  return from && to ? (Date.parse(to) - Date.parse(from)) / 1000 : NaN;
}

/** Stops a recording, waits for it to end, downloads and checks its file. */
async function finish(server: TestServer, id: string, publishers: PublisherSpec[], dir: string, audioOnly = false) {
  await server.api("POST", `/v1/recordings/${id}/stop`);
  const rec = await server.waitFor(id, (r) => TERMINAL.includes(r.status), 120_000);
  if (rec.status !== "completed" || !rec.file) return { rec, check: { ok: false, detail: `ended ${rec.status}: ${JSON.stringify(rec.error)}` } };
  return { rec, check: checkContent(await download(server, id, dir), publishers, audioOnly) };
}

/** Records the meeting, measures the whole session over `seconds` s after a 4 s settle. */
async function sessionRow(server: TestServer, meeting: Meeting, body: Record<string, unknown>, dir: string, seconds = 30): Promise<SessionRow> {
  const id = (await server.api("POST", "/v1/recordings", { url: meeting.viewerUrl, join: meeting.joinSteps(), ...body })).json().id;
  const pids = await sessionPids(server, id);
  await sleep(4000); // let the page settle
  const usage = await measure(() => pids, seconds * 1000);
  const { rec, check } = await finish(server, id, meeting.publishers, dir, body.mode === "audio");
  return { usage, status: rec.status, kibPerSecond: rec.file ? rec.file.bytes / rec.file.durationSeconds / 1024 : 0,
    fileS: rec.file?.durationSeconds ?? 0, windowS: captureWindowS(rec), check };
}

/** One session measured under one server setting: the browser's processes and the whole session. */
interface VariantRow { label: string; browser: Usage; session: Usage; check: Check; status: string }

/**
 * The same 1280×720@30 recording of the meeting under each server setting of `variants` (its
 * MEETREC_* environment), in turn (a, b, c, a, b, c …) so that load drifts hit all alike; a
 * fresh server per session. Cores and peak PSS of the browser's process tree and of the whole
 * session (Xvfb + browser + ffmpeg), `seconds` s after 4 s of settling.
 */
async function variantRows(meeting: Meeting, dir: string, variants: { label: string; env: Record<string, string> }[], rounds = 3, seconds = 20): Promise<VariantRow[]> {
  const rows: VariantRow[] = [];
  for (let i = 0; i < rounds * variants.length; i++) {
    const v = variants[i % variants.length];
    process.stderr.write(`${v.label}, round ${Math.floor(i / variants.length) + 1}\n`);
    const server = await startServer({ netns: meeting.netns, egress: meeting.egress, startWhen: "joined", env: { MEETREC_LOG_LEVEL: "warn", MEETREC_CONCURRENCY: "1", ...v.env } });
    try {
      const id = (await server.api("POST", "/v1/recordings", { url: meeting.viewerUrl, join: meeting.joinSteps(), video: { width: 1280, height: 720, fps: 30 } })).json().id;
      const pids = await sessionPids(server, id);
      await sleep(4000);
      const [browser, session] = await Promise.all([measure(() => [pids[1]], seconds * 1000), measure(() => pids, seconds * 1000)]);
      const { rec, check } = await finish(server, id, meeting.publishers, dir);
      rows.push({ label: v.label, browser, session, check, status: rec.status });
    } finally {
      await server.stop();
    }
  }
  return rows;
}

/** Medians of each variant's rows, as a table row per variant: browser cores and PSS, session cores and PSS, the files' checks. */
function variantTable(rows: VariantRow[], labels: string[], p: (s: string) => void): void {
  const med = (xs: VariantRow[], f: (r: VariantRow) => number) => median(xs.map(f));
  p("| setting | browser cores | browser peak PSS (MiB) | session cores | session peak PSS (MiB) | file checks |\n|---|---|---|---|---|---|");
  for (const label of labels) {
    const rs = rows.filter((r) => r.label === label);
    p(`| ${label} | ${med(rs, (r) => r.browser.cores).toFixed(3)} | ${med(rs, (r) => r.browser.peakPssMiB).toFixed(0)} | ${med(rs, (r) => r.session.cores).toFixed(3)} | ${med(rs, (r) => r.session.peakPssMiB).toFixed(0)} | ${rs.map((r) => (r.status === "completed" ? r.check.detail : r.status)).join("; ")} |`);
  }
}

/** `a` against `b` (variant labels): browser cores, browser PSS and session cores as ratios of the medians. */
function variantRatios(rows: VariantRow[], a: string, b: string): string {
  const med = (label: string, f: (r: VariantRow) => number) => median(rows.filter((r) => r.label === label).map(f));
  const ratio = (f: (r: VariantRow) => number) => (med(a, f) / med(b, f)).toFixed(3);
  return `browser cores ×${ratio((r) => r.browser.cores)}, browser PSS ×${ratio((r) => r.browser.peakPssMiB)}, session cores ×${ratio((r) => r.session.cores)}, session PSS ×${ratio((r) => r.session.peakPssMiB)}`;
}

/** Chromium switches tried by the `flags` part (capture.chromiumArgs), each against none. */
const FLAG_SETS: string[][] = [
  [],
  ["--disable-features=AudioServiceOutOfProcess"], // the audio service in the browser process too (not meetrec's default: it moves the sound path)
  ["--disable-gpu"], // software compositing in the browser process, no GPU process
];

/**
 * One session measured with per-participant tracks on or off: the browser's processes, the
 * whole session, and `meetrecCores` — meetrec's process tree less the session: meetrec itself
 * (where the chunks are decoded and fsync'd) and the PulseAudio daemon it runs.
 */
interface TracksRow { on: boolean; browser: Usage; session: Usage; meetrecCores: number; check: Check; status: string; tracks: number }

/**
 * The cost of per-participant tracks (`tracks: true`: a MediaRecorder per remote audio track in
 * the page, its chunks written and fsync'd by meetrec): the same 1280×720@30 recording of the
 * 2-publisher meeting with `tracks` on and off, alternating, one server for all (the switch is
 * the request's). meetrec's process (the chunks' base64 decode and fsync) is measured too.
 */
async function tracksRows(meeting: Meeting, dir: string, rounds = 3, seconds = 20): Promise<TracksRow[]> {
  const rows: TracksRow[] = [];
  const server = await startServer({ netns: meeting.netns, egress: meeting.egress, startWhen: "joined", env: { MEETREC_LOG_LEVEL: "warn", MEETREC_CONCURRENCY: "1" } });
  try {
    for (let i = 0; i < rounds * 2; i++) {
      const on = i % 2 === 0;
      process.stderr.write(`tracks ${on ? "on" : "off"}, round ${Math.floor(i / 2) + 1}\n`);
      const id = (await server.api("POST", "/v1/recordings", { url: meeting.viewerUrl, join: meeting.joinSteps(), video: { width: 1280, height: 720, fps: 30 }, tracks: on })).json().id;
      const pids = await sessionPids(server, id);
      await sleep(4000);
      const [browser, session, meetrec] = await Promise.all([
        measure(() => [pids[1]], seconds * 1000), measure(() => pids, seconds * 1000), measure(() => [server.child.pid!], seconds * 1000),
      ]);
      const { rec, check } = await finish(server, id, meeting.publishers, dir);
      rows.push({ on, browser, session, meetrecCores: meetrec.cores - session.cores, check, status: rec.status, tracks: rec.file?.tracks?.length ?? 0 });
    }
  } finally {
    await server.stop();
  }
  return rows;
}

/** meetrec's encoder and a Nextcloud-settings encoder on the same 1080p session, each measured alone. */
async function encoderRows(server: TestServer, meeting: Meeting, dir: string, seconds = 30) {
  const id = (await server.api("POST", "/v1/recordings", { url: meeting.viewerUrl, join: meeting.joinSteps(), video: { width: 1920, height: 1080, fps: 30, bitrateKbps: 2500 } })).json().id;
  const [, , encoder] = await sessionPids(server, id);
  const env = readFileSync(`/proc/${encoder}/environ`, "utf8").split("\0").filter(Boolean);
  const get = (k: string) => env.find((e) => e.startsWith(`${k}=`))!.slice(k.length + 1);
  const args = readFileSync(`/proc/${encoder}/cmdline`, "utf8").split("\0");
  const grab = args[args.indexOf("-i", args.indexOf("x11grab")) + 1];
  const monitor = args[args.lastIndexOf("-i") + 1];
  // The same raw input queues as meetrec's encoder (frames for x11grab, packets for pulse).
  const queueBefore = (format: string) => args[args.lastIndexOf("-thread_queue_size", args.indexOf(format)) + 1];
  const videoQueue = queueBefore("x11grab");
  const audioQueue = queueBefore("pulse");
  const ncFile = join(dir, `nextcloud-${id}.webm`);
  const ncArgs = ["-hide_banner", "-loglevel", "error", "-nostdin", "-y",
    "-thread_queue_size", videoQueue, "-f", "x11grab", "-draw_mouse", "0", "-framerate", "30", "-video_size", "1920x1080", "-i", grab,
    "-thread_queue_size", audioQueue, "-f", "pulse", "-i", monitor,
    "-c:v", "libvpx", "-quality:v", "realtime", "-crf", "10", "-b:v", "1M", "-c:a", "libopus", ncFile];
  const nc = spawn("ffmpeg", ncArgs, { env: { ...process.env, DISPLAY: get("DISPLAY"), PULSE_SERVER: get("PULSE_SERVER") }, stdio: "ignore" });
  await sleep(4000);
  const both = await Promise.all([measure(() => [encoder], seconds * 1000), measure(() => [nc.pid!], seconds * 1000)]);
  nc.kill("SIGINT");
  await new Promise((r) => nc.once("exit", r));
  const { rec, check } = await finish(server, id, meeting.publishers, dir);
  const ncDur = Number(ffprobe(ncFile).format.duration);
  return {
    meetrec: { usage: both[0], kibPerSecond: rec.file ? rec.file.bytes / rec.file.durationSeconds / 1024 : 0, check },
    nextcloud: { usage: both[1], kibPerSecond: readFileSync(ncFile).length / ncDur / 1024, check: checkContent(ncFile, meeting.publishers) },
    ncArgs: ncArgs.map((a) => (a === grab ? ":N.0+0,0" : a === monitor ? "SINK.monitor" : a === ncFile ? "out.webm" : a)).join(" "),
  };
}

/** `capture.firstSegmentSeconds` of the start-latency servers, s. */
const FIRST_SEGMENT_S = 0.5;

/** What start latency is measured on: the request's body, and the check of the finished recording (stops it). */
interface LatencyTarget { body: Record<string, unknown>; check(server: TestServer, id: string, requestedAtMs: number): Promise<Check> }

/** Start latencies of one server: POST → capture started (`recording`), POST → first segment durable, s. */
interface LatencyRuns { label: string; capture: number[]; counted: number[]; rejected: string[] }

/**
 * Start latency, s: POST → capture started (status `recording`) and POST → first segment
 * durable, with the fixture's full join steps (Start, name, Register, both remote videos present
 * and showing frames). `servers` take turns run by run (side by side in one run: a cold server
 * and one with warm capture stacks, `capture.warmBrowsers`, whose pool is full again before
 * every run, so that no browser launches beside a run). Each run then records until it has 3 segments, is stopped, and counts only if it
 * completed and its file passed the check.
 */
async function startLatency(servers: { label: string; server: TestServer }[], target: LatencyTarget, runs = 5): Promise<LatencyRuns[]> {
  const out: LatencyRuns[] = servers.map((s) => ({ label: s.label, capture: [], counted: [], rejected: [] }));
  for (let i = 0; i < runs; i++) {
    for (const [k, { server }] of servers.entries()) {
      // Every pool full first (none refilling): a browser launching beside a run would slow that run.
      for (const { server: other } of servers) {
        const warmStacks = async () => /^meetrec_warm_stacks\{[^}]*\} (\d+)/m.exec((await other.api("GET", "/metrics")).body.toString())?.[1];
        if (await warmStacks() === undefined) continue;
        for (const end = Date.now() + 30_000; Date.now() < end && (await warmStacks()) === "0";) await new Promise((r) => setTimeout(r, 200));
      }
      await new Promise((r) => setTimeout(r, 1000));
      const t0 = Date.now();
      const id = (await server.api("POST", "/v1/recordings", target.body)).json().id;
      let captureAt: number | undefined;
      const first = await server.waitFor(id, (r) => {
        if (r.status === "recording") captureAt ??= Date.now();
        return r.segmentCount >= 1 || TERMINAL.includes(r.status);
      }, 60_000);
      const latency = (Date.now() - t0) / 1000;
      if (first.segmentCount >= 1) await server.waitFor(id, (r) => r.segmentCount >= 3 || TERMINAL.includes(r.status), 60_000);
      const check = await target.check(server, id, t0);
      if (check.ok && captureAt) {
        out[k].counted.push(latency);
        out[k].capture.push((captureAt - t0) / 1000);
      } else out[k].rejected.push(`run ${i + 1} (${latency.toFixed(2)} s): ${check.detail}`);
    }
  }
  return out;
}

/**
 * Start latency on a page that joins with one click (the sync page's Join button), cold and
 * with a warm stack, side by side: two servers without WebRTC, `startWhen: joined`.
 */
async function oneClickLatency(dir: string): Promise<LatencyRuns[]> {
  const page = await startSyncPage();
  const env = { MEETREC_LOG_LEVEL: "warn", MEETREC_CONCURRENCY: "1", MEETREC_CAPTURE__FIRST_SEGMENT_SECONDS: String(FIRST_SEGMENT_S) };
  const cold = await startServer({ egress: { allowedOrigins: [page.origin] }, env });
  const warm = await startServer({ egress: { allowedOrigins: [page.origin] }, env: { ...env, MEETREC_CAPTURE__WARM_BROWSERS: "1" } });
  try {
    return await startLatency([{ label: "cold (no warm stack)", server: cold }, { label: "warm stack (`capture.warmBrowsers: 1`)", server: warm }], {
      body: { url: page.url, join: [{ click: "#join" }], video: { width: 1280, height: 720, fps: 30 } },
      check: async (srv, id, requestedAtMs) => {
        const stopSentAtMs = Date.now();
        await srv.api("POST", `/v1/recordings/${id}/stop`);
        const rec = await srv.waitFor(id, (r) => TERMINAL.includes(r.status), 120_000);
        if (rec.status !== "completed") return { ok: false, detail: `ended ${rec.status}: ${JSON.stringify(rec.error)}` };
        try {
          checkPage(await download(srv, id, dir), { bg: [0x20, 0x60, 0xc0], requestedAtMs, endedByMs: Date.now(), stopSentAtMs });
          return { ok: true, detail: "page live, in step" };
        } catch (err) {
          return { ok: false, detail: (err as Error).message.slice(0, 300) };
        }
      },
    });
  } finally {
    await cold.stop();
    await warm.stop();
    await page.close();
  }
}

/** One recording of a concurrency round: distinct pictures, length, the encoder's own counts. */
interface ConcurrencyRow { n: number; status: string; fileS: number; distinctFps: number; frames?: { encoded: number; duplicated: number; dropped: number }; degraded: number; check: Check }

/**
 * Distinct pictures per second in `[fromS, fromS + seconds)` of `file`: frames that differ from
 * the previous kept one (ffmpeg `mpdecimate` with its defaults, variable rate out), over `seconds`.
 */
function distinctFps(file: string, fromS: number, seconds: number): number {
  const r = spawnSync("ffmpeg", ["-hide_banner", "-nostdin", "-ss", String(fromS), "-t", String(seconds), "-i", file, "-an", "-vf", "mpdecimate", "-fps_mode", "vfr", "-f", "null", "-"], { encoding: "utf8" });
  const frames = [...(r.stderr ?? "").matchAll(/frame=\s*(\d+)/g)].map((m) => Number(m[1]));
  return frames.length ? frames[frames.length - 1] / seconds : 0;
}

/**
 * The concurrency sweep: N recordings of the meeting (1280×720@30) started at once on one
 * server with admission opened wide (capacity is what this measures), recorded `seconds` s,
 * each file's distinct pictures per second over its middle 20 s, its length, and the encoder's
 * frame counts and `frames_degraded` events (does meetrec notice?).
 */
async function concurrencyRows(meeting: Meeting, dir: string, ns = [1, 2, 3, 4], seconds = 40): Promise<ConcurrencyRow[]> {
  const rows: ConcurrencyRow[] = [];
  for (const n of ns) {
    process.stderr.write(`concurrency: ${n} at once\n`);
    const server = await startServer({ netns: meeting.netns, egress: meeting.egress, startWhen: "media", env: { MEETREC_LOG_LEVEL: "warn", MEETREC_CONCURRENCY: String(n), MEETREC_CAPACITY__CPU_BUDGET: "64" } });
    try {
      const t0 = Date.now();
      const ids: string[] = [];
      for (let i = 0; i < n; i++) ids.push((await server.api("POST", "/v1/recordings", { url: meeting.viewerUrl, join: meeting.joinSteps(), video: { width: 1280, height: 720, fps: 30 } })).json().id);
      await sleep(Math.max(0, t0 + seconds * 1000 - Date.now()));
      await Promise.all(ids.map((id) => server.api("POST", `/v1/recordings/${id}/stop`)));
      for (const id of ids) {
        const rec = await server.waitFor(id, (r) => TERMINAL.includes(r.status), 120_000);
        if (rec.status !== "completed" || !rec.file) { rows.push({ n, status: rec.status, fileS: 0, distinctFps: 0, degraded: 0, check: { ok: false, detail: `ended ${rec.status}` } }); continue; }
        const file = await download(server, id, dir);
        const fileS = rec.file.durationSeconds;
        const window = Math.min(20, fileS);
        rows.push({ n, status: rec.status, fileS, distinctFps: distinctFps(file, Math.max(0, (fileS - window) / 2), window), frames: rec.frames ?? undefined,
          degraded: rec.events.filter((e: { type: string }) => e.type === "frames_degraded").length, check: checkContent(file, meeting.publishers) });
        rmSync(file, { force: true });
      }
    } finally {
      await server.stop();
    }
  }
  return rows;
}

/** One reference (publishers × size) and every setting measured on it. */
interface SettingsGroup { publishers: string; size: string; rows: SettingRow[]; check: string }

/**
 * The encoder settings part: for flat and high-motion publishers, at 1280×720 and 1920×1080,
 * a recording of the meeting shows it on a display, 8 s of that display are grabbed losslessly
 * into /dev/shm, the recording is stopped (its file checked), and each setting encodes the grab.
 */
async function settingsRows(seconds = 8): Promise<SettingsGroup[]> {
  const groups: SettingsGroup[] = [];
  const dir = mkdtempSync(join(tmpdir(), "meetrec-bench-files-"));
  const shm = mkdtempSync("/dev/shm/meetrec-bench-");
  try {
    for (const [label, publishers] of [["flat", DEFAULT_PUBLISHERS], ["high-motion", HIGH_MOTION_PUBLISHERS]] as const) {
      const meeting = await startMeeting({ publishers });
      const server = await startServer({ netns: meeting.netns, egress: meeting.egress, startWhen: "media", env: { MEETREC_LOG_LEVEL: "warn", MEETREC_CONCURRENCY: "1" } });
      try {
        for (const [width, height] of [[1280, 720], [1920, 1080]] as const) {
          process.stderr.write(`settings: ${label}, ${width}×${height}\n`);
          const id = (await server.api("POST", "/v1/recordings", { url: meeting.viewerUrl, join: meeting.joinSteps(), video: { width, height, fps: 30 } })).json().id;
          const [, , encoder] = await sessionPids(server, id);
          await sleep(4000); // let the page settle
          const ref = join(shm, "reference.bgr0");
          const frames = grabReference(encoderDisplay(encoder), width, height, 30, seconds, ref);
          const { check } = await finish(server, id, publishers, dir);
          const rows: SettingRow[] = [];
          for (const s of settings(width, height, DEFAULT_CAPTURE)) {
            process.stderr.write(`  ${s.name}\n`);
            rows.push(measureSetting(ref, width, height, 30, frames, s, dir));
          }
          rmSync(ref, { force: true });
          groups.push({ publishers: label, size: `${width}×${height}@30`, rows, check: check.detail });
        }
      } finally {
        await server.stop();
        await meeting.stop();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(shm, { recursive: true, force: true });
  }
  return groups;
}

// ───────────────────────────── report ─────────────────────────────

function machine(): string {
  const cpu = /model name\s*:\s*(.*)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "?";
  const mem = Math.round(Number(/MemTotal:\s+(\d+)/.exec(readFileSync("/proc/meminfo", "utf8"))![1]) / 1048576);
  const v = (cmd: string, args: string[]) => { try { return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).split("\n")[0].trim(); } catch { return "?"; } };
  const pkg = (names: string[]) => v("dpkg-query", ["-W", "-f", "${Package} ${Version}, ", ...names]).replace(/,$/, "");
  return [`- CPU: ${cpu}, ${readdirSync("/sys/devices/system/cpu").filter((d) => /^cpu\d+$/.test(d)).length} cores; ${mem} GiB memory; kernel ${v("uname", ["-r"])}`,
    `- ${v("chromium", ["--version"])}; ${v("ffmpeg", ["-version"]).replace(/ Copyright.*/, "")}`,
    `- Debian packages: ${pkg(["chromium", "ffmpeg", "xvfb", "pulseaudio", "janus"])}`,
    `- Node ${process.version}`].join("\n");
}

const fmtUsage = (r: { usage: Usage; kibPerSecond: number; check: Check }) =>
  r.check.ok ? `${r.usage.cores.toFixed(2)} | ${r.usage.peakPssMiB.toFixed(0)} MiB | ${r.kibPerSecond.toFixed(0)} KiB` : "— | — | —";

async function main() {
  const { values } = parseArgs({ options: { only: { type: "string" } } });
  const only = values.only;
  if (only && !["av", "sessions", "latency", "watcher", "tracks", "concurrency", "settings", "flags"].includes(only)) throw new Error(`--only av|sessions|latency|watcher|tracks|concurrency|settings|flags, not ${only}`);
  const want = (part: string) => !only || only === part;
  if (process.getuid?.() !== 0) throw new Error("make bench needs root (network namespace for the Janus meeting)");
  const report: string[] = [];
  const p = (s: string) => { report.push(s); process.stderr.write(s + "\n"); };
  const started = Date.now();
  p(`### Run of ${new Date().toISOString().slice(0, 10)}\n\nCommand: \`make bench\` (\`node --import tsx scripts/bench.ts${only ? ` --only ${only}` : ""}\`), as root.\n\nMachine:\n${machine()}\n`);

  if (want("av")) {
    const av = await avRig();
    const o = av.offsetsMs;
    p(`A/V offset of the capture chain (no browser; sound minus picture, ms, positive = sound late; capture.audioDelayMs = ${av.audioDelayMs}), ` +
      `${o.length} events in ${o.length / AV_EVENTS_S.length} runs at irregular intervals:`);
    if (o.length) {
      const within = o.filter((x) => x >= -ITU_EARLY_MS && x <= ITU_LATE_MS).length;
      p(`- every offset: ${o.map((x) => Math.round(x)).join(", ")}`);
      p(`- min ${Math.round(Math.min(...o))}, median ${Math.round(median(o))}, max ${Math.round(Math.max(...o))} ms; ` +
        `${within} of ${o.length} within ITU-R BT.1359's detectability limits (sound early ≤ ${ITU_EARLY_MS} ms, late ≤ ${ITU_LATE_MS} ms)`);
    }
    for (const f of av.failures) p(`- not counted: ${f}`);
    p(`- rig: flash triggers ≤ ${av.triggerLateMaxMs.toFixed(1)} ms late, xsetroot ran median ${median(av.xsetrootMs).toFixed(1)}, max ${Math.max(...av.xsetrootMs).toFixed(1)} ms (a flash lands that much after its instant at most); ` +
      `pacat started ≤ ${Math.round(av.pacatStartupMaxMs)} ms before each encoder, stream latency ≤ ${av.pacatLatencyMaxMs.toFixed(1)} ms, ${av.underruns} underruns during the events; ` +
      `resolution one frame (33 ms) for the picture, 10 ms for the sound\n`);
  }

  if (want("watcher") || want("flags")) {
    const dir = mkdtempSync(join(tmpdir(), "meetrec-bench-files-"));
    const meeting = await startMeeting();
    const flagLabel = (f: string[]) => (f.length ? f.map((x) => `\`${x}\``).join(" ") : "meetrec's switches only");
    let watcher: VariantRow[] = [];
    let flags: VariantRow[] = [];
    try {
      if (want("watcher")) watcher = await variantRows(meeting, dir, [{ label: "on", env: { MEETREC_CAPTURE__MEDIA_WATCHER: "true" } }, { label: "off", env: { MEETREC_CAPTURE__MEDIA_WATCHER: "false" } }]);
      if (want("flags")) flags = await variantRows(meeting, dir, FLAG_SETS.map((f) => ({ label: flagLabel(f), env: { MEETREC_CAPTURE__CHROMIUM_ARGS: JSON.stringify(f) } })));
    } finally {
      await meeting.stop();
      rmSync(dir, { recursive: true, force: true });
    }
    if (want("watcher")) {
      p("Media watcher (capture.mediaWatcher on/off): the same 1280×720@30 recording of the 2-publisher meeting (flat), Chromium, alternating on/off, " +
        "3 sessions each, 20 s window each; browser = the browser's process tree (where the watcher runs), session = Xvfb + browser + ffmpeg; median of the sessions:\n");
      variantTable(watcher, ["on", "off"], p);
      p(`\nWatcher on / off: ${variantRatios(watcher, "on", "off")}\n`);
    }
    if (want("flags")) {
      p(`Chromium switches (capture.chromiumArgs): the same 1280×720@30 recording of the 2-publisher meeting (flat), each set in turn, 3 sessions each, 20 s window each; browser = the browser's process tree, session = Xvfb + browser + ffmpeg; median of the sessions:\n`);
      const labels = FLAG_SETS.map(flagLabel);
      variantTable(flags, labels, p);
      p("");
      for (const l of labels.slice(1)) p(`- ${l} / ${labels[0]}: ${variantRatios(flags, l, labels[0])}`);
      p("");
    }
  }

  if (want("tracks")) {
    const dir = mkdtempSync(join(tmpdir(), "meetrec-bench-files-"));
    const meeting = await startMeeting();
    let rows: TracksRow[];
    try {
      rows = await tracksRows(meeting, dir);
    } finally {
      await meeting.stop();
      rmSync(dir, { recursive: true, force: true });
    }
    p("Per-participant tracks (request `tracks` on/off): the same 1280×720@30 recording of the 2-publisher meeting (flat, two remote audio tracks), Chromium, alternating on/off, " +
      "3 sessions each, 20 s window each; browser = the browser's process tree (where the recorders run), session = Xvfb + browser + ffmpeg, meetrec = the server's process tree less the session (meetrec itself, where the chunks are decoded and fsync'd, and its PulseAudio daemon); median of the sessions:\n");
    p("| tracks | browser cores | browser peak PSS (MiB) | session cores | meetrec cores | track files | file checks |\n|---|---|---|---|---|---|---|");
    const med = (xs: TracksRow[], f: (r: TracksRow) => number) => median(xs.map(f));
    for (const on of [true, false]) {
      const rs = rows.filter((r) => r.on === on);
      p(`| ${on ? "on" : "off"} | ${med(rs, (r) => r.browser.cores).toFixed(3)} | ${med(rs, (r) => r.browser.peakPssMiB).toFixed(0)} | ${med(rs, (r) => r.session.cores).toFixed(3)} | ${med(rs, (r) => r.meetrecCores).toFixed(3)} | ${rs.map((r) => r.tracks).join(", ")} | ${rs.map((r) => (r.status === "completed" ? r.check.detail : r.status)).join("; ")} |`);
    }
    const on = rows.filter((r) => r.on), off = rows.filter((r) => !r.on);
    const perTrack = (med(on, (r) => r.session.cores + r.meetrecCores) - med(off, (r) => r.session.cores + r.meetrecCores)) / 2;
    p(`\nTracks on − off: browser ${(med(on, (r) => r.browser.cores) - med(off, (r) => r.browser.cores)).toFixed(3)} cores, browser PSS ${(med(on, (r) => r.browser.peakPssMiB) - med(off, (r) => r.browser.peakPssMiB)).toFixed(0)} MiB, ` +
      `meetrec ${(med(on, (r) => r.meetrecCores) - med(off, (r) => r.meetrecCores)).toFixed(3)} cores; per track (session + meetrec, 2 tracks) ≈ ${perTrack.toFixed(3)} cores\n`);
  }

  if (want("concurrency")) {
    const dir = mkdtempSync(join(tmpdir(), "meetrec-bench-files-"));
    const meeting = await startMeeting();
    let rows: ConcurrencyRow[];
    try {
      rows = await concurrencyRows(meeting, dir);
    } finally {
      await meeting.stop();
      rmSync(dir, { recursive: true, force: true });
    }
    p("Concurrency: N recordings of the 2-publisher meeting (flat) at 1280×720@30 started at once on one server (admission opened wide), 40 s from the first POST; " +
      "distinct pictures per second over each file's middle 20 s (ffmpeg mpdecimate; the publishers send 15 fps and the page's clock changes too), " +
      "the encoder's own counts (view `frames`) and the `frames_degraded` events meetrec put on the timeline:\n");
    p("| N | file (s) | distinct fps | encoded / duplicated / dropped | frames_degraded | file check |\n|---|---|---|---|---|---|");
    for (const r of rows) {
      const f = r.frames ? `${r.frames.encoded} / ${r.frames.duplicated} (${((r.frames.duplicated / Math.max(1, r.frames.encoded)) * 100).toFixed(1)} %) / ${r.frames.dropped}` : "—";
      p(`| ${r.n} | ${r.fileS.toFixed(1)} | ${r.distinctFps.toFixed(1)} | ${f} | ${r.degraded} | ${r.check.detail} |`);
    }
    p("");
  }

  if (want("settings")) {
    const rows = await settingsRows();
    p("Encoder settings, judged on the same pictures: a lossless grab (8 s, raw frames) of the recorder's display showing the 2-publisher meeting, " +
      "encoded by each setting at its real-time rate; cores = the encoding ffmpeg's CPU s per s of picture (pixel conversion + encoder; the grab is the same for all), " +
      "SSIM of the file (shown at 30 fps, a dropped frame held) against the grab, frame by frame; kept = frames in the file per frame grabbed:\n");
    p("| publishers | size | setting | cores | × default | SSIM (all) | SSIM (Y) | kbit/s | kept |\n|---|---|---|---|---|---|---|---|---|");
    for (const g of rows) {
      const today = g.rows[0].cores;
      for (const r of g.rows) {
        p(r.error ? `| ${g.publishers} | ${g.size} | ${r.setting} | failed: ${r.error} |||||| ` :
          `| ${g.publishers} | ${g.size} | ${r.setting} | ${r.cores.toFixed(3)} | ${(r.cores / today).toFixed(2)} | ${r.ssim.toFixed(4)} | ${r.ssimY.toFixed(4)} | ${r.kbps.toFixed(0)} | ${r.kept.toFixed(2)} |`);
      }
      p(`| ${g.publishers} | ${g.size} | (the recording that showed it: ${g.check}) |||||||`);
    }
    p("");
  }

  if (want("sessions") || want("latency")) {
    const dir = mkdtempSync(join(tmpdir(), "meetrec-bench-files-"));
    type Variant = { label: string; publishers: PublisherSpec[]; rows: SessionRow[]; enc?: Awaited<ReturnType<typeof encoderRows>> };
    const variants: Variant[] = [
      { label: "flat", publishers: DEFAULT_PUBLISHERS, rows: [] },
      { label: "high-motion", publishers: HIGH_MOTION_PUBLISHERS, rows: [] },
    ];
    const bodies: [string, Record<string, unknown>][] = [
      [`video 1280×720@30 (default, ${X264} 2.5 Mbit/s)`, { video: { width: 1280, height: 720, fps: 30 } }],
      [`video 1920×1080@30 (${X264} 2.5 Mbit/s)`, { video: { width: 1920, height: 1080, fps: 30 } }],
      ["audio only (AAC 128 kbit/s)", { mode: "audio" }],
    ];
    let latency: LatencyRuns[] | undefined;
    let oneClick: LatencyRuns[] | undefined;
    try {
      for (const v of variants) {
        if (!want("sessions") && v.label !== "flat") continue;
        const meeting = await startMeeting({ publishers: v.publishers });
        const server = await startServer({ netns: meeting.netns, egress: meeting.egress, startWhen: "media", env: { MEETREC_LOG_LEVEL: "warn", MEETREC_CONCURRENCY: "1" } });
        try {
          if (want("sessions")) {
            for (const [name, body] of bodies) {
              process.stderr.write(`session: ${v.label}, ${name}\n`);
              v.rows.push(await sessionRow(server, meeting, body, dir));
            }
            process.stderr.write(`encoders: ${v.label}\n`);
            v.enc = await encoderRows(server, meeting, dir);
          }
          if (want("latency") && v.label === "flat") {
            process.stderr.write("start latency\n");
            const env = { MEETREC_LOG_LEVEL: "warn", MEETREC_CONCURRENCY: "1", MEETREC_CAPTURE__FIRST_SEGMENT_SECONDS: String(FIRST_SEGMENT_S) };
            const cold = await startServer({ netns: meeting.netns, egress: meeting.egress, startWhen: "media", env });
            const warm = await startServer({ netns: meeting.netns, egress: meeting.egress, startWhen: "media", env: { ...env, MEETREC_CAPTURE__WARM_BROWSERS: "1" } });
            try {
              latency = await startLatency([{ label: "cold (no warm stack)", server: cold }, { label: "warm stack (`capture.warmBrowsers: 1`)", server: warm }], {
                body: { url: meeting.viewerUrl, join: meeting.joinSteps(), video: { width: 1280, height: 720, fps: 30 } },
                check: async (srv, id) => (await finish(srv, id, meeting.publishers, dir)).check,
              });
            } finally {
              await cold.stop();
              await warm.stop();
            }
          }
        } finally {
          await server.stop();
          await meeting.stop();
        }
      }
      if (want("latency")) {
        process.stderr.write("start latency, one-click page\n");
        oneClick = await oneClickLatency(dir);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    if (want("sessions")) {
      const [flat, high] = variants;
      p("Whole recording session (Xvfb + browser processes + ffmpeg), 2-publisher Janus meeting (each publisher 320×240 VP8 ≤ 256 kbit/s + Opus), " +
        "Chromium, 30 s window; cores = CPU s per recorded s, memory = peak sum of PSS; flat vs high-motion publishers. " +
        "Capture window = first encoder start → the stop reaching it (the most the file could hold):\n");
      p("| recording | publishers | cores | peak memory (PSS) | file bytes per s | file / capture window (s) | file check |\n|---|---|---|---|---|---|---|");
      bodies.forEach(([name], i) => {
        for (const v of [flat, high]) {
          const r = v.rows[i];
          p(`| ${name} | ${v.label} | ${fmtUsage(r)} | ${r.fileS.toFixed(1)} / ${r.windowS.toFixed(1)} | ${r.check.detail} |`);
        }
      });
      p("\nEncoder only, same 1920×1080@30 display and sink at the same time, same raw input queues (30 s window):\n");
      p("| encoder | publishers | cores | peak memory (PSS) | file bytes per s | file check |\n|---|---|---|---|---|---|");
      for (const v of [flat, high]) {
        p(`| meetrec: H.264 ${X264} 2.5 Mbit/s + AAC, fMP4 segments | ${v.label} | ${fmtUsage(v.enc!.meetrec)} | ${v.enc!.meetrec.check.detail} |`);
        p(`| Nextcloud recorder settings: VP8 realtime -crf 10 -b:v 1M + Opus, WebM | ${v.label} | ${fmtUsage(v.enc!.nextcloud)} | ${v.enc!.nextcloud.check.detail} |`);
      }
      p(`\nReference command (queues as meetrec's encoder): \`ffmpeg ${flat.enc!.ncArgs}\`\n`);
    }
    const latencyTable = (what: string, runs: LatencyRuns[]) => {
      p(`Start latency on ${what}, \`capture.firstSegmentSeconds: ${FIRST_SEGMENT_S}\` on both servers; the two servers took turns, run by run): ` +
        "POST /v1/recordings → capture started (status `recording`) and → first segment durable, median (min–max) in s:\n");
      p("| server | runs counted | → capture started | → first segment durable |\n|---|---|---|---|");
      const mm = (x: number[]) => (x.length ? `${median(x).toFixed(2)} (${Math.min(...x).toFixed(2)}–${Math.max(...x).toFixed(2)})` : "–");
      for (const l of runs) p(`| ${l.label} | ${l.counted.length} of ${l.counted.length + l.rejected.length} | ${mm(l.capture)} | ${mm(l.counted)} |`);
      for (const l of runs) for (const r of l.rejected) p(`- not counted (${l.label}): ${r}`);
      p("");
    };
    if (oneClick) latencyTable("a page that joins with one click (the local sync page, 1280×720@30, `startWhen: joined`, join step `click #join`, each file checked as a viewer would, `checkPage`", oneClick);
    if (latency) latencyTable("the meeting (1280×720@30, flat publishers, full join steps, `startWhen: media`", latency);
  }
  p(`(bench.ts took ${((Date.now() - started) / 60000).toFixed(1)} min)\n`);
  process.stdout.write(report.join("\n") + "\n");
}

main().then(() => process.exit(0), (err) => { process.stderr.write(`bench failed: ${(err as Error).stack ?? err}\n`); process.exit(1); });
