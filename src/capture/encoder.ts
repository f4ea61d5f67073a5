/**
 * The encoder: ffmpeg grabs the display (x11grab) and the sink's monitor source (pulse) and
 * writes fragmented MP4 (CMAF) through the HLS muxer: `init.mp4` plus media segments
 * `000001.m4s`, `000002.m4s` … of `segmentSeconds` each, every one starting on a keyframe
 * (forced keyframe interval = segment duration). A segment counts as closed once the muxer
 * lists it in its playlist (RFC 8216 §4.3.2.1 EXTINF), which it does after the segment file
 * is complete.
 *
 * Over 300 lines: the ffmpeg argument array, the segment watch and the progress reading
 * (frame counts, first frame) belong to one process and are kept together.
 */
import { EventEmitter } from "node:events";
import { watch, type FSWatcher } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { ManagedProcess } from "../util/process.js";
import type { FrameCounts } from "../store/index.js";

/** What one encoder run captures and how. */
export interface EncoderOptions {
  mode: "video" | "audio";
  /**
   * Video mode: whether the sound is recorded too (default true). False records the picture
   * alone — no sound input is opened and the file has no audio stream (OpenVidu's
   * `ONLY_VIDEO=true`).
   */
  audio?: boolean;
  /** DISPLAY to grab (video mode). */
  display?: string;
  width: number;
  height: number;
  fps: number;
  bitrateKbps: number;
  /** Audio bitrate, kbit/s (AAC or Opus). */
  audioBitrateKbps: number;
  /**
   * Codec of the sound: `aac` (default) or `opus` (audio-only recordings that end as Ogg: the
   * fragments carry Opus, so finalize only changes the container).
   */
  audioCodec?: "aac" | "opus";
  /** Delay added to the sound, ms (cancels the capture chain's bias; default 0). */
  audioDelayMs?: number;
  /** PulseAudio monitor source name (`meetrec_x.monitor`). */
  monitor: string;
  /** `PULSE_SERVER` value. */
  pulseServer: string;
  /** Media segment duration, s. */
  segmentSeconds: number;
  /**
   * Video: length of each run's first media segment, s, when shorter than `segmentSeconds`
   * (`capture.firstSegmentSeconds`): a keyframe is forced that long after the first frame and the
   * muxer cuts there, so the first segment is durable that soon after the picture starts (the
   * start latency, and what a crash in the first seconds keeps); from the second segment on the
   * keyframe interval is `segmentSeconds` again (x264 counts its GOP from the forced keyframe).
   */
  firstSegmentSeconds?: number;
  x264Preset: string;
  /** x264 options on top of the preset (`-x264-params`, `key=value:…`); empty or absent for none. */
  x264Params?: string;
  /** Directory ffmpeg writes into (created by the caller). */
  dir: string;
  ffmpegPath?: string;
  /** Extra environment of the ffmpeg process (the recording's marker). */
  env?: Record<string, string>;
  /**
   * Wall clock (ms since the epoch) that media time 0 stands for; default: the spawn. The
   * session passes the time its period's manifest entry names, so `startedAt` there is exact.
   */
  origin?: number;
}

/** A closed media segment, still in the encoder's directory. */
export interface ClosedSegment {
  /** 1-based sequence number within the period. */
  seq: number;
  path: string;
  /** Duration from the playlist, ms. */
  durationMs: number;
  /** Video: the encoder's frame counts since the previous segment (by its statistics, ±0.5 s). */
  frames?: FrameCounts;
}

/** The playlist the muxer maintains in the encoder directory. */
export const PLAYLIST = "live.m3u8";
export const INIT_SEGMENT = "init.mp4";

/**
 * ffmpeg's `-frame_drop_threshold`, in frames: a frame grabbed more than 1 − this before the next
 * free output slot is dropped rather than put in it. Rule: fftools/ffmpeg.c `do_video_out`,
 * case VSYNC_CFR (ffmpeg 5.1); measured in docs/decisions.md "Frame slots and grabs".
 */
const FRAME_DROP_THRESHOLD = 0.2;

/**
 * Builds ffmpeg's argument array for one encoder run (no shell involved).
 *
 * Both inputs stamp packets with the wallclock (x11grab and pulse use `av_gettime()`, µs since
 * the epoch). ffmpeg would normally shift each input to start at 0 on its own, which loses
 * their offset: the sound source starts later than the display grab, so audio would run
 * early. Instead timestamps are kept (`-copyts`) and both chains subtract the same origin
 * `originUs` (the wallclock when the encoder was spawned, µs), so media time 0 = `originUs`.
 * `aresample` pads the start of the sound with silence and keeps it on the clock.
 * `originUs` defaults to now.
 */
export function encoderArgs(o: EncoderOptions, originUs = Date.now() * 1000): string[] {
  const seg = o.segmentSeconds;
  const input: string[] = [];
  const maps: string[] = [];
  const codecs: string[] = [];
  const shift = `PTS-${originUs}/(TB*1000000)`;
  /** The muxer cuts at the first keyframe at least this long after the last cut, s. */
  let hlsTime = seg;
  if (o.mode === "video") {
    // Constant output frame rate + fixed GOP = a keyframe exactly every segment duration, and
    // the same time base (1/fps) in every period, so periods join by stream copy. A short first
    // segment: a keyframe forced firstSegmentSeconds after the first frame, and the muxer
    // cutting at every keyframe at least that long after the last cut.
    const gop = Math.max(1, Math.round(o.fps * seg));
    const firstKey = Math.round(o.fps * Math.min(o.firstSegmentSeconds ?? seg, seg));
    const shortFirst = firstKey >= 1 && firstKey < gop;
    if (shortFirst) hlsTime = firstKey / o.fps;
    // Raw frames are large (6 MB at 1080p): a queue of ~2 s bounds memory when the encoder lags.
    input.push("-thread_queue_size", String(Math.max(8, Math.round(o.fps * 2))), "-f", "x11grab", "-draw_mouse", "0", "-framerate", String(o.fps),
      "-video_size", `${o.width}x${o.height}`, "-i", `${o.display}.0+0,0`);
    maps.push("-map", "0:v:0", ...(o.audio === false ? [] : ["-map", "1:a:0"]));
    codecs.push("-filter:v", `setpts=${shift}`, "-r", String(o.fps), "-fps_mode", "cfr",
      // zerolatency: no lookahead and no B-frames, so a frame leaves the encoder as soon as it
      // is grabbed. With x264's default ~1 s of delay, ffmpeg reads the video input ahead of the
      // sound and drops the sound still queued when it is stopped: every file and every period
      // ended with ~1.2 s of picture without sound (docs/decisions.md "Encoder delay").
      "-c:v", "libx264", "-preset", o.x264Preset, "-tune", "zerolatency", ...(o.x264Params ? ["-x264-params", o.x264Params] : []), "-profile:v", "high", "-pix_fmt", "yuv420p",
      "-b:v", `${o.bitrateKbps}k`, "-maxrate", `${Math.round(o.bitrateKbps * 1.5)}k`, "-bufsize", `${o.bitrateKbps * 2}k`,
      "-g", String(gop), "-keyint_min", String(gop), "-sc_threshold", "0",
      ...(shortFirst ? ["-force_key_frames", `expr:eq(n,${firstKey})`] : []));
  } else {
    maps.push("-map", "0:a:0");
  }
  if (o.mode === "audio" || o.audio !== false) {
    // The pulse input is opened last: sound piling up between its opening and ffmpeg's first
    // read is stamped from a latency that under-counts it (docs/decisions.md).
    input.push("-thread_queue_size", "512", "-f", "pulse", "-sample_rate", "48000", "-channels", "2",
      "-fragment_size", "3840", "-i", o.monitor);
    // Audio keeps pulse's per-packet wallclock stamps (its time filter converges; anchoring on
    // the first packet alone was off by 0.2–0.6 s), and aresample inserts silence or drops
    // samples as soon as the stamps and the sample count disagree by more than 20 ms, so the
    // sound stays continuous and within ~50 ms of the picture (measured, docs/benchmarks.md).
    const audioShift = `PTS-${originUs - Math.round((o.audioDelayMs ?? 0) * 1000)}/(TB*1000000)`;
    codecs.push("-filter:a", `asetpts=${audioShift},aresample=async=1:min_hard_comp=0.02:first_pts=0`,
      // libopus: 48 kHz is Opus's own rate (RFC 7845 §5.1), 20 ms frames; fMP4 carries it
      // (ISO/IEC 14496-12 Opus mapping, `Opus`/`dOps`), and Ogg takes it by stream copy.
      "-c:a", o.audioCodec === "opus" ? "libopus" : "aac", "-b:a", `${o.audioBitrateKbps}k`, "-ar", "48000", "-ac", "2");
  }
  return [
    "-hide_banner", "-loglevel", "warning", "-nostdin", "-y", "-copyts",
    // Frame slots: the constant-rate output repeats a frame grabbed ≥ 0.5 slot late, but by
    // default drops one only when it is over 2.1 slots early. After any stall of the grab (a
    // burst of frames grabbed at once as x11grab catches up) every later frame then sat up to
    // two slots after the one it was grabbed for, for the rest of the run: the picture 1–2
    // frames late, the sound that much early (133 ms at 15 fps). With 0.2 a frame more than
    // 0.8 slot early is dropped instead, so the picture sits within −0.5…+0.8 frame of its grab
    // time whatever happened before, with 0.3 frame of hysteresis against stamp jitter
    // (docs/decisions.md "Frame slots and grabs").
    ...(o.mode === "video" ? ["-frame_drop_threshold", String(FRAME_DROP_THRESHOLD)] : []),
    // Encoder statistics (key=value blocks on stdout every 0.5 s): when frames first flow, and
    // how many were duplicated or dropped.
    "-progress", "pipe:1", "-stats_period", "0.5",
    ...input, ...maps, ...codecs,
    "-f", "hls", "-hls_time", String(hlsTime), "-hls_list_size", "0", "-hls_playlist_type", "event",
    "-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", INIT_SEGMENT, "-start_number", "1",
    "-hls_segment_filename", join(o.dir, "%06d.m4s"), "-hls_flags", "independent_segments+temp_file",
    join(o.dir, PLAYLIST),
  ];
}

/**
 * Parses a media playlist into closed segments (URI + EXTINF duration). Tolerates a playlist
 * caught mid-write: only entries whose URI line is newline-terminated count.
 */
export function parsePlaylist(text: string): { uri: string; durationMs: number }[] {
  const out: { uri: string; durationMs: number }[] = [];
  const lines = text.split("\n");
  const complete = lines.length - 1; // the piece after the last newline is partial (or empty)
  let pending: number | undefined;
  for (let i = 0; i < complete; i++) {
    const line = lines[i].trim();
    if (line.startsWith("#EXTINF:")) pending = Math.round(parseFloat(line.slice(8)) * 1000);
    else if (line && !line.startsWith("#") && pending !== undefined) {
      out.push({ uri: line, durationMs: pending });
      pending = undefined;
    }
  }
  return out;
}

/** One block of ffmpeg's `-progress` output: frames encoded, duplicated and dropped so far. */
export interface EncoderProgress {
  frame: number;
  dupFrames: number;
  dropFrames: number;
  /** Output media time, µs (0 until the muxer has written media). */
  outTimeUs: number;
}

/** The frame counts between two statistics blocks of one run (`from` undefined: since it began). */
export function framesBetween(from: EncoderProgress | undefined, to: EncoderProgress): FrameCounts {
  const d = (a: number, b = 0) => Math.max(0, a - b);
  return { encoded: d(to.frame, from?.frame), duplicated: d(to.dupFrames, from?.dupFrames), dropped: d(to.dropFrames, from?.dropFrames) };
}

/**
 * Parses ffmpeg `-progress` text (`key=value` lines, each block ending `progress=continue|end`)
 * into the complete blocks it holds, and the unparsed rest.
 */
export function parseProgress(text: string): { blocks: EncoderProgress[]; rest: string } {
  const blocks: EncoderProgress[] = [];
  let cur: Record<string, string> = {};
  let consumed = 0;
  for (const m of text.matchAll(/([^\n=]+)=([^\n]*)\n/g)) {
    cur[m[1].trim()] = m[2].trim();
    if (m[1].trim() === "progress") {
      const n = (k: string) => (Number.isFinite(Number(cur[k])) ? Number(cur[k]) : 0);
      blocks.push({ frame: n("frame"), dupFrames: n("dup_frames"), dropFrames: n("drop_frames"), outTimeUs: n("out_time_us") });
      cur = {};
      consumed = m.index! + m[0].length;
    }
  }
  return { blocks, rest: text.slice(consumed) };
}

/** How an encoder run ended. `requested` is true when {@link Encoder.stop} asked for it. */
export interface EncoderExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  requested: boolean;
}

/** The events of an {@link Encoder} → their arguments (Node's typed `EventEmitter`). */
export interface EncoderEvents {
  /**
   * Once, when the first frames (video) or sound (audio) have been encoded: the wallclock (ms)
   * when they began, estimated from what the first report says was encoded.
   */
  media: [at: number];
  /** Once, when the init segment is written: its path. */
  init: [path: string];
  /** Each closed media segment, in order. */
  segment: [segment: ClosedSegment];
  /** After the last segment has been emitted: how the run ended. */
  exit: [info: EncoderExit];
  /** Reading the playlist failed unexpectedly (the next change or poll, ≤ 250 ms later, tries again). */
  warning: [err: unknown];
}

/**
 * One ffmpeg run; its events are {@link EncoderEvents}: `media` once, `init` once, then
 * `segment` in order, and `exit` after the last segment has been emitted. A segment the muxer
 * listed with no duration (it closes one on SIGINT before any frame) is not media and is not
 * emitted.
 */
export class Encoder extends EventEmitter<EncoderEvents> {
  private readonly proc: ManagedProcess;
  private emitted = 0;
  private initSeen = false;
  private timer?: NodeJS.Timeout;
  private watcher?: FSWatcher;
  private polling = Promise.resolve();
  private stopRequested = false;
  /** Resolves once ffmpeg has exited and every closed segment has been emitted. */
  readonly finished: Promise<EncoderExit>;
  /** Media time 0 of its period, ms since the epoch: `options.origin`, else when the encoder process was started. */
  readonly startedAt: number;
  /** Wall-clock time (ms) the first encoded frames were grabbed, once there are any. */
  mediaAt?: number;
  /** The encoder's latest statistics. */
  progress?: EncoderProgress;
  /** The statistics when the previous segment was emitted (its frames are counted up to there). */
  private counted?: EncoderProgress;

  constructor(readonly options: EncoderOptions) {
    super();
    this.startedAt = options.origin ?? Date.now();
    this.proc = new ManagedProcess(options.ffmpegPath ?? "ffmpeg", encoderArgs(options, this.startedAt * 1000), {
      env: { ...process.env, ...options.env, PULSE_SERVER: options.pulseServer, ...(options.display ? { DISPLAY: options.display } : {}) },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let pending = "";
    this.proc.child.stdout?.on("data", (d: Buffer) => {
      const { blocks, rest } = parseProgress(pending + d.toString());
      pending = rest.slice(-4000);
      for (const b of blocks) {
        this.progress = b;
        const flowing = options.mode === "video" ? b.frame > 0 : b.outTimeUs > 0;
        if (flowing && this.mediaAt === undefined) {
          // Frames are grabbed in real time: what was encoded so far began that long ago.
          const coveredMs = options.mode === "video" ? (b.frame / options.fps) * 1000 : b.outTimeUs / 1000;
          this.mediaAt = Math.max(this.startedAt, Math.round(Date.now() - coveredMs));
          this.emit("media", this.mediaAt);
        }
      }
    });
    // The playlist is read when the muxer renames a new one into place (inotify), so a closed
    // segment is seen at once; the 250 ms poll stays as the fallback (a filesystem without
    // change events, an event lost).
    try {
      this.watcher = watch(options.dir, (_event, name) => {
        if (name === PLAYLIST || name === INIT_SEGMENT) this.schedulePoll();
      });
      this.watcher.on("error", () => this.watcher?.close());
    } catch { /* no change events here: the poll alone */ }
    this.timer = setInterval(() => this.schedulePoll(), 250);
    this.finished = this.proc.exited.then(async ({ code, signal }) => {
      clearInterval(this.timer);
      this.watcher?.close();
      this.schedulePoll();
      await this.polling;
      const info: EncoderExit = { code, signal, stderr: this.proc.stderr, requested: this.stopRequested };
      this.emit("exit", info);
      return info;
    });
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  get running(): boolean {
    return this.proc.running;
  }

  private schedulePoll(): void {
    this.polling = this.polling.then(() => this.poll()).catch((err) => { this.emit("warning", err); });
  }

  private async poll(): Promise<void> {
    let text: string;
    try {
      text = await readFile(join(this.options.dir, PLAYLIST), "utf8");
    } catch {
      return; // not written yet
    }
    if (!this.initSeen) {
      try {
        await stat(join(this.options.dir, INIT_SEGMENT));
      } catch {
        return;
      }
      this.initSeen = true;
      this.emit("init", join(this.options.dir, INIT_SEGMENT));
    }
    const entries = parsePlaylist(text);
    while (this.emitted < entries.length) {
      const e = entries[this.emitted];
      this.emitted++;
      if (e.durationMs <= 0) continue; // an empty segment closed before any frame
      const now = this.progress;
      const frames = this.options.mode === "video" && now ? framesBetween(this.counted, now) : undefined;
      if (now) this.counted = now;
      this.emit("segment", { seq: this.emitted, path: join(this.options.dir, e.uri), durationMs: e.durationMs, ...(frames ? { frames } : {}) });
    }
  }

  /**
   * Asks ffmpeg to finish (SIGINT: it closes the open segment and the playlist), SIGKILL
   * after `graceMs` (default 8000 ms). Resolves when every segment has been emitted. Idempotent.
   */
  async stop(graceMs = 8000): Promise<EncoderExit> {
    this.stopRequested = true;
    await this.proc.stop("SIGINT", graceMs);
    return this.finished;
  }

  /** Kills ffmpeg at once (tests, crash simulation). */
  kill(signal: NodeJS.Signals = "SIGKILL"): void {
    this.proc.child.kill(signal);
  }
}
