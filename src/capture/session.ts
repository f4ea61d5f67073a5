/**
 * One recording session on this machine: it owns the display, the sink, the browser and the
 * encoder runs, and closes all of them (in reverse order) whatever happens. Media is handed
 * to the caller's hooks in order; the session itself stores nothing.
 *
 * Over 300 lines because it is the one owner of a session's resources and their supervision
 * (display, sink, egress proxy, browser, encoder runs, watchdog, rejoin): split, nobody would
 * own the order in which they are closed.
 */
import { mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CaptureConfig, VideoSettings } from "../config/index.js";
import { MeetrecError, errorMessage, publicErrorMessage, withoutPaths } from "../util/errors.js";
import type { Logger } from "../util/log.js";
import { sleep } from "../util/process.js";
import { NullSink, PulseServer } from "./audio.js";
import { BrowserUnresponsive, RecorderBrowser, openPage, type BrowserKind } from "./browser.js";
import { XvfbDisplay } from "./display.js";
import { Encoder, type ClosedSegment, type EncoderExit } from "./encoder.js";
import { runJoinSteps, type JoinStep } from "./join.js";
import { profileDirName, recordingEnv, registerProcesses, removeProfile } from "./orphans.js";
import { periodDir } from "../media/index.js";
import { enforceRequestPolicy, type BlockedRequest } from "./request-policy.js";
import { MediaWatcher, type MeetingState } from "./watcher.js";
import type { SpeakingStretch } from "./speaking.js";
import { TrackTaps, type TrackSink } from "./tracks.js";
import { EgressProxy, RequestGuard, egressError, type BrowserEgress, type EgressRefusal } from "../egress/index.js";
import { redactUrl, withoutUrl } from "../util/redact.js";
import type { EventOf, SessionPids, SpeakerInterval } from "../store/index.js";
import type { Page } from "puppeteer-core";

export type { SessionPids };

/** With `startWhen: media` in video mode: how long after the first live source the start waits for every remote picture to decode, ms. */
const MEDIA_SETTLE_MS = 2000;

/** Page flag set when the page calls `window.close()` ({@link CLOSE_HOOK}). */
const CLOSE_ASKED = "__meetrecCloseAsked";
/**
 * Runs in the page before its scripts: notes a `window.close()` before doing it. Browsers refuse
 * it for a tab the page's own script did not open (the recorder's is such a tab), so the page
 * asking is what ends the meeting — as it would for a person, whose tab the browser also keeps.
 */
const CLOSE_HOOK = `(() => {
  const close = window.close.bind(window);
  window.close = function () { window[${JSON.stringify(CLOSE_ASKED)}] = true; return close(); };
})();`;

/** How the page left the meeting (see {@link SessionHooks.ended}); `url` is redacted. */
export interface PageEnded {
  how: "navigated" | "closed" | "selector";
  url?: string;
  selector?: string;
}

/** The timeline events a capture session reports through {@link SessionHooks.event} (their shapes: store/timeline.ts). */
export type SessionEvent = EventOf<
  "popup_closed" | "tab_crashed" | "navigation_blocked" | "request_blocked" | "encoder_hung" | "page_hung"
  | "browser_disconnected" | "browser_rejoined" | "browser_rejoin_failed" | "store_error" | "encoder_exited" | "media_started" | "media_wait_timed_out" | "speaking" | "track_problem"
>;

/**
 * Platform-specific joining (e.g. Nextcloud Talk's `OCA.Talk.*` calls), run after the page has
 * loaded and the declarative join steps have run.
 */
export interface PlatformAdapter {
  /** Joins the call. @throws MeetrecError `join_failed` with a reason that says what to fix. */
  join(page: Page, signal?: AbortSignal): Promise<void>;
  /** Leaves the call cleanly before the browser is closed. Must not throw. */
  leave(page: Page): Promise<void>;
  /**
   * Reads and clears the speaking stretches the page saw since the join; a stretch still open
   * ends now. Called once per page, when the recording stops (before the encoder does) or the
   * session closes, never while recording. Must not throw (nothing seen → `[]`).
   */
  speakers?(page: Page): Promise<SpeakerInterval[]>;
}

export interface SessionOptions {
  recordingId: string;
  url: string;
  join: JoinStep[];
  mode: "video" | "audio";
  /** Codec of the sound (`opus` for audio-only recordings that end as Ogg); default `aac`. */
  audioCodec?: "aac" | "opus";
  /** Video mode: record the sound too (default true); false = the picture alone. */
  audio?: boolean;
  browser: BrowserKind;
  video: VideoSettings;
  capture: CaptureConfig;
  /** Scratch directory of this session on the data filesystem (encoder output before it is stored, process registry). */
  workDir: string;
  pulse: PulseServer;
  log: Logger;
  /** Platform join adapter, if the meeting needs one. */
  adapter?: PlatformAdapter;
  /** Accept the meeting page's TLS certificate without verification. */
  acceptInsecureCerts?: boolean;
  /** Reason recorded for the first period (`start`; `resume` when continuing a recording). */
  firstPeriodReason?: string;
  /** Where the browser may go (the backend's origin lists and the egress policy); enforced on every request. */
  egress: BrowserEgress;
  /** A CSS selector whose appearance means the meeting has ended (checked every second while recording). */
  endedSelector?: string;
  /**
   * `media`: the first encoder run of a new recording (`firstPeriodReason` `start`) waits after
   * joining until the page receives remote media, at most `timeoutMs`; `requestedAtMs` (wall
   * clock, ms) is when the recording was asked for, for the timeline. Absent or `joined`: the
   * run begins right after joining, as do resumed and taken-over recordings (the meeting runs).
   */
  startWhen?: { when: "joined" | "media"; timeoutMs: number; requestedAtMs: number };
  /** {@link CaptureSession.start} joins but captures nothing until {@link CaptureSession.resume} (a paused recording taken over). */
  startPaused?: boolean;
  /**
   * Record each remote audio track on its own too (capture/tracks.ts), handed to
   * {@link SessionHooks.tracks}; needs `capture.mediaWatcher`. Fixed when the session is created.
   */
  tracks?: boolean;
}

/** Callbacks through which the session hands over what it captures. All are awaited in order. */
export interface SessionHooks {
  /** A new encoder run begins; returns the period number the media will be stored under. */
  beginPeriod(reason: string, startedAt: Date): Promise<number>;
  init(period: number, path: string): Promise<void>;
  segment(period: number, seg: ClosedSegment): Promise<void>;
  /**
   * An encoder run's first frames (video) or sound (audio) were encoded, at wallclock `at` (ms):
   * media flows. Called once per run.
   */
  mediaFlowing(period: number, at: number): void;
  /** Something worth putting on the recording's timeline. Must not throw. */
  event(e: SessionEvent): void;
  /** Where the per-participant recorders' chunks go ({@link SessionOptions.tracks}): in order per recorder. */
  tracks?: TrackSink;
  /** The speaking stretches a page saw ({@link PlatformAdapter.speakers}), when there were any. Must not throw. */
  speakers?(intervals: SpeakerInterval[]): Promise<void>;
  /** The session cannot go on (the encoder died too often). Called at most once. */
  failed(err: MeetrecError): void;
  /** The media watcher's view of the meeting changed (participants, media flowing): see `watcher.ts`. */
  meeting?(state: MeetingState): void;
  /**
   * The page left the meeting after the join: it navigated to another origin, closed itself, or
   * shows `endedSelector`. Called at most once per session.
   */
  ended?(e: PageEnded): void;
}

/** The origin of `url` when it is an http(s) URL, else undefined (`about:blank`, an error page, junk). */
function httpOrigin(url: string): string | undefined {
  try {
    const u = new URL(url);
    return /^https?:$/.test(u.protocol) ? u.origin : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether a page now at `url` has left a meeting on `meetingOrigin` (`https://host[:port]`): it
 * is on another http(s) origin. Pages that are not http(s) (`about:blank`, the browser's error
 * pages) are not taken for an end: a crash or a network error shows them too.
 */
export function leftMeeting(meetingOrigin: string, url: string): boolean {
  const o = httpOrigin(url);
  return o !== undefined && o !== meetingOrigin;
}

/**
 * Whether `a` and `b` ask for the same stage — page, join steps, platform adapter, browser,
 * mode and frame size: what {@link CaptureSession.open} sets up, so that a session opened for
 * `a` can be bound to `b` ({@link CaptureSession.bind}). Frame rate, sound and bitrate are the
 * encoder's and may differ.
 */
export function sameStage(a: SessionOptions, b: SessionOptions): boolean {
  return a.url === b.url && JSON.stringify(a.join) === JSON.stringify(b.join) && a.adapter === b.adapter && a.browser === b.browser
    && a.mode === b.mode && a.video.width === b.video.width && a.video.height === b.video.height && !!a.acceptInsecureCerts === !!b.acceptInsecureCerts;
}

/**
 * Whether a session warmed for `a` ({@link CaptureSession.prewarm}: display, sink and browser,
 * no page yet) can record `b`: the same browser, launched the same way (path, switches, TLS
 * leniency), on a display of `b`'s frame size, in video mode. The page, join steps, egress and
 * encoder settings are `b`'s own and set when it is bound.
 */
export function sameStack(a: SessionOptions, b: SessionOptions): boolean {
  const path = (o: SessionOptions) => (o.browser === "chromium" ? o.capture.chromiumPath : o.capture.firefoxPath);
  return a.browser === b.browser && path(a) === path(b) && JSON.stringify(a.capture.chromiumArgs) === JSON.stringify(b.capture.chromiumArgs)
    && a.mode === "video" && b.mode === "video" && a.video.width === b.video.width && a.video.height === b.video.height
    && !!a.acceptInsecureCerts === !!b.acceptInsecureCerts;
}

/** Egress of a warm session before a recording is bound to it: no connection is allowed. */
export const NO_EGRESS: BrowserEgress = { navigation: [], requests: [], named: [], allow: [] };

/** See module doc. Use {@link CaptureSession.start}, then {@link CaptureSession.stop}. */
export class CaptureSession {
  private display?: XvfbDisplay;
  private sink?: NullSink;
  private browser?: RecorderBrowser;
  private encoder?: Encoder;
  private period = 0;
  private firstOrigin?: number;
  private restarts = 0;
  private browserRestarts = 0;
  private stopping = false;
  private closed = false;
  private closing?: Promise<void>;
  private ingest: Promise<void> = Promise.resolve();
  private ingestError?: unknown;
  private watchdog?: NodeJS.Timeout;
  /** Wallclock (ms) of the last closed segment, or of the current encoder run's start. */
  private lastSegmentAt = 0;
  /** Wallclock (ms) the page last answered a probe (or was (re)joined). */
  private pageAliveAt = 0;
  /** The browser a page probe is outstanding for. */
  private probing?: RecorderBrowser;
  private rejoining = false;
  private pending = 0;
  /** The page whose speaking stretches were read (once per page). */
  private speakersRead?: Page;
  private guard?: RequestGuard;
  private proxy?: EgressProxy;
  /** The first refused top-level navigation: the recording cannot go on. */
  private blocked?: MeetrecError;
  /** Refusals already put on the timeline, by what was refused (one event each). */
  private readonly reported = new Set<string>();
  /** Environment every process of the session carries (`MEETREC_RECORDING=<id>`, orphans.ts). */
  private marker: Record<string, string>;
  /** The id the browser profiles are named after (the one the session was created with). */
  private readonly profileId: string;
  /** Display, sink, proxy and browser are up and the page joined ({@link open}). */
  private opened = false;
  /** Display, sink, proxy and browser are up on `about:blank`, no page yet ({@link prewarm}). */
  private staged = false;
  /** What the page receives (every page the session opens is watched). */
  readonly watcher = new MediaWatcher();
  /** Wall clock (ms) capturing was paused at; undefined while capturing (or before). */
  private pausedAt?: number;
  /** Generic speaking stretches being stored, in order ({@link onSpeaking}). */
  private speakingStored: Promise<void> = Promise.resolve();
  /** The per-participant recorders ({@link SessionOptions.tracks}), when asked for. */
  private taps?: TrackTaps;

  constructor(private o: SessionOptions, private hooks: SessionHooks) {
    this.marker = recordingEnv(o.recordingId);
    this.watcher.on("speaking", (s) => this.onSpeaking(s));
    let last = "";
    this.watcher.on("state", (s) => {
      const key = `${s.participants}/${s.peakParticipants}/${s.media.audio}/${s.media.video}`;
      if (key === last) return;
      last = key;
      this.hooks.meeting?.(s);
    });
    this.profileId = o.recordingId;
    if (o.tracks && hooks.tracks && o.capture.mediaWatcher) this.taps = new TrackTaps(hooks.tracks);
  }

  /** Starts the per-participant recorders for the run that just began (one file per track and run); a browser that cannot record Opus is on the timeline. */
  private startTracks(): void {
    const taps = this.taps;
    if (!taps) return;
    void taps.start().then((ok) => {
      if (!ok && !this.stopping) this.hooks.event({ type: "track_problem", message: "The browser cannot record a remote track as Opus (MediaRecorder); no per-participant tracks in this run", data: {} });
    });
  }

  /** The options the session runs with (the latest {@link bind}'s). */
  get options(): SessionOptions {
    return this.o;
  }

  /** Open ({@link open}) or warm ({@link prewarm}), still connected to its browser, and capturing nothing yet: ready to {@link bind}. */
  get ready(): boolean {
    return (this.opened || this.staged) && !this.closed && !this.stopping && !this.encoder && !!this.browser?.browser.connected;
  }

  /** Warm ({@link prewarm}) and not yet showing a page. */
  get warm(): boolean {
    return this.staged && !this.opened;
  }

  /** Recording: capturing, or paused in the meeting (the page's crashes and its end still count). */
  private get live(): boolean {
    return !!this.encoder || this.pausedAt !== undefined;
  }

  /** Whether capturing is paused ({@link pause}). */
  get paused(): boolean {
    return this.pausedAt !== undefined;
  }

  /**
   * Stops capturing without leaving the meeting: the encoder closes its open segment, which is
   * stored like every other, and exits; display, sink and browser stay (a crashed browser is
   * still relaunched and rejoins). Resolves once the last segment is stored. No-op unless capturing.
   * @returns the period that ended, or undefined when nothing changed.
   */
  async pause(): Promise<number | undefined> {
    const enc = this.encoder;
    if (!enc || this.stopping || this.closed || this.pausedAt !== undefined) return undefined;
    this.pausedAt = Date.now();
    this.encoder = undefined;
    const tracks = this.taps?.stop();
    await enc.stop();
    await this.ingest;
    await tracks;
    await this.taps?.drain(3000);
    this.register();
    return this.period;
  }

  /**
   * Captures again after {@link pause} (or a session started paused): a new encoder run, i.e.
   * a new period (`unpause`). @returns how long it was paused, ms; undefined when it was not.
   * @throws MeetrecError `encoder_failed` when the encoder cannot start (the recording fails).
   */
  async resume(): Promise<number | undefined> {
    if (this.pausedAt === undefined || this.stopping || this.closed) return undefined;
    const pausedMs = Date.now() - this.pausedAt;
    this.pausedAt = undefined;
    await this.startEncoder("unpause");
    return pausedMs;
  }

  get pids(): SessionPids {
    return { display: this.display?.pid, sinkPin: this.sink?.pinPid, browser: this.browser?.pid, encoder: this.encoder?.pid };
  }

  /**
   * Starts display, sink and browser, opens the meeting, runs the join steps (unless
   * {@link open} did) and starts the first encoder run. On failure everything already started
   * is closed before it throws.
   * @throws MeetrecError `display_failed` | `audio_failed` | `browser_failed` | `join_failed`.
   */
  async start(signal?: AbortSignal): Promise<void> {
    await this.guarded(signal, async () => {
      if (!this.opened) await this.openNow(signal);
      this.abortIfStopped(signal);
      if (this.o.startWhen?.when === "media" && (this.o.firstPeriodReason ?? "start") === "start" && this.o.capture.mediaWatcher) await this.waitForMedia(this.o.startWhen, signal);
      this.abortIfStopped(signal);
      mkdirSync(this.o.workDir, { recursive: true });
      this.register();
      // An open session may have waited long for its recording: the watchdog counts from now.
      this.pageAliveAt = Date.now();
      if (this.o.startPaused) this.pausedAt = Date.now();
      else await this.startEncoder(this.o.firstPeriodReason ?? "start");
      this.startWatchdog();
    });
  }

  /**
   * A stretch of speaking the watcher heard on one track: on the timeline (`speaking`) and
   * stored, unless the platform adapter reads who spoke itself (Talk: named participants).
   * A generic stretch is named by its track. Stores are chained; {@link stop} awaits them.
   */
  private onSpeaking(s: SpeakingStretch): void {
    if (this.o.adapter?.speakers || !this.hooks.speakers) return;
    this.hooks.event({ type: "speaking", message: `${s.track} spoke for ${((s.stopMs - s.startMs) / 1000).toFixed(1)} s`, data: { track: s.track, startMs: s.startMs, stopMs: s.stopMs, stopType: s.stopType } });
    const interval: SpeakerInterval = { participantId: s.track, participantName: "", participantUserId: "", startMs: s.startMs, stopMs: s.stopMs, startType: "voice", stopType: s.stopType };
    const store = this.hooks.speakers.bind(this.hooks);
    this.speakingStored = this.speakingStored.then(() => store([interval])).catch(() => undefined);
  }

  /**
   * Waits until the media watcher sees a remote source with live media (sound or picture; in
   * video mode also every remote picture decoding, up to {@link MEDIA_SETTLE_MS} more), or
   * `s.timeoutMs`, or a stop: a file then opens on the meeting, not on seconds of a spinner.
   * Puts `media_started` (waited ms, ms since the request) or `media_wait_timed_out` on the timeline.
   */
  private async waitForMedia(s: NonNullable<SessionOptions["startWhen"]>, signal?: AbortSignal): Promise<void> {
    const began = Date.now();
    let firstLiveAt: number | undefined;
    // Live: a source plays; in video mode also every remote picture the page has is decoding
    // (sound arrives before a camera's first keyframe), or MEDIA_SETTLE_MS passed since the first.
    const live = () => {
      const st = this.watcher.state;
      if (st.participants === 0) return false;
      firstLiveAt ??= Date.now();
      return this.o.mode !== "video" || st.videoPending === 0 || Date.now() - firstLiveAt >= MEDIA_SETTLE_MS;
    };
    const got = live() || await new Promise<boolean>((resolve) => {
      const done = (v: boolean) => {
        clearTimeout(timer);
        this.watcher.off("state", onState);
        signal?.removeEventListener("abort", onAbort);
        resolve(v);
      };
      const onState = () => { if (live()) done(true); };
      const onAbort = () => done(false);
      const timer = setTimeout(() => done(false), s.timeoutMs);
      this.watcher.on("state", onState);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
    if (signal?.aborted) return;
    const now = Date.now();
    const waitedMs = now - began;
    if (got) {
      this.hooks.event({ type: "media_started", message: `Remote media plays ${(waitedMs / 1000).toFixed(1)} s after joining, ${((now - s.requestedAtMs) / 1000).toFixed(1)} s after the request; recording`, data: { waitedMs, sinceRequestMs: now - s.requestedAtMs } });
    } else {
      this.hooks.event({ type: "media_wait_timed_out", message: `No remote media ${(waitedMs / 1000).toFixed(0)} s after joining (startTimeoutSeconds); recording the page as it is`, data: { waitedMs } });
    }
  }

  /**
   * Opens everything but the capture: display, sink and browser, the meeting page and its join
   * steps — a browser ready to record, which {@link start} then records at once (OpenVidu's
   * quick start; {@link bind} hands it to the recording that starts it). On failure everything
   * already started is closed before it throws. Errors: as {@link start}.
   */
  async open(signal?: AbortSignal): Promise<void> {
    await this.guarded(signal, () => this.openNow(signal));
  }

  /**
   * Starts display, sink, egress proxy and browser (a fresh profile, on `about:blank`) and
   * nothing else: a warm stack for a recording that does not exist yet (capture/pool.ts). Its
   * proxy refuses every connection until a recording is bound ({@link bind}); {@link start}
   * then only opens the page and joins. On failure everything started is closed.
   * @throws MeetrecError `display_failed` | `audio_failed` | `browser_failed`.
   */
  async prewarm(signal?: AbortSignal): Promise<void> {
    await this.guarded(signal, async () => {
      await this.openStage(NO_EGRESS, signal);
      await this.launchBrowser();
      this.staged = true;
      this.register();
    });
  }

  /**
   * Hands a session opened with {@link open}, or warmed with {@link prewarm}, to the recording
   * that captures it: `o` and `hooks` replace the ones it was made with (its recording id, work
   * directory, log, egress, mode's sound, first period's reason). What is open stays: an open
   * session needs `o` to ask for the same page, join steps, browser and frame size
   * ({@link sameStage}), a warm one the same browser and frame size ({@link sameStack}); else
   * nothing changes and it throws. A warm session's proxy enforces `o.egress` from now on.
   * Processes started from now on (the encoder, a relaunched browser) carry `o.recordingId`'s marker.
   * @throws MeetrecError `internal` when the session is neither open nor warm, already captures, or `o` asks for another stage.
   */
  bind(o: SessionOptions, hooks: SessionHooks): this {
    if (!(this.opened || this.staged) || this.encoder || this.closed) throw new MeetrecError("internal", "Only an open or warm session that captures nothing yet can be handed to a recording");
    if (this.opened ? !sameStage(this.o, o) : !sameStack(this.o, o)) throw new MeetrecError("internal", "The open session shows another page, browser or frame size than the recording asks for");
    this.o = o;
    this.hooks = hooks;
    this.marker = recordingEnv(o.recordingId);
    if (!this.opened) {
      this.guard = new RequestGuard(o.egress);
      this.proxy!.enforce(this.guard);
      if (o.tracks && hooks.tracks && o.capture.mediaWatcher) this.taps = new TrackTaps(hooks.tracks);
    }
    return this;
  }

  /** Runs `fn`; a stop (`signal`) closes the session at once, and any failure closes it before rethrowing. */
  private async guarded(signal: AbortSignal | undefined, fn: () => Promise<void>): Promise<void> {
    // A stop while joining closes the browser at once: every pending page call then fails fast.
    const onAbort = () => void this.close();
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      await fn();
    } catch (err) {
      await this.close();
      throw err;
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }

  private async openNow(signal?: AbortSignal): Promise<void> {
    if (this.staged) {
      // A warm stack: display, sink, proxy and browser are up; the page is opened now.
      mkdirSync(this.o.workDir, { recursive: true });
      this.register();
      await this.joinOrRelaunch(signal);
    } else {
      await this.openStage(this.o.egress, signal);
      await this.launchAndJoin(signal);
    }
    this.opened = true;
  }

  /** Starts the display, the sink and the egress proxy (enforcing `egress`). */
  private async openStage(egress: BrowserEgress, signal?: AbortSignal): Promise<void> {
    const { o } = this;
    const log = o.log;
    mkdirSync(o.workDir, { recursive: true });
    const width = o.mode === "video" ? o.video.width : 640;
    const height = o.mode === "video" ? o.video.height : 360;
    this.display = await this.adopt(XvfbDisplay.start({ width, height, xvfbPath: o.capture.xvfbPath, env: this.marker }));
    log.debug({ display: this.display.name }, "display started");
    this.sink = await this.adopt(o.pulse.createSink(`meetrec_${o.recordingId.replace(/[^a-zA-Z0-9]/g, "").slice(0, 32)}`, this.marker));
    this.register(); // a kill -9 while joining leaves nothing the next start cannot find
    this.abortIfStopped(signal);
    this.guard = new RequestGuard(egress);
    this.proxy = await this.adopt(EgressProxy.start(this.guard, (hp, refusal) => this.onProxyRefused(hp, refusal)));
  }

  /** Launches the browser (fresh profile), opens the meeting and joins it. */
  private async launchAndJoin(signal?: AbortSignal): Promise<void> {
    await this.launchBrowser();
    this.abortIfStopped(signal);
    await this.joinOrRelaunch(signal);
  }

  /**
   * Joins in the launched browser. A browser that loaded the page but stopped answering
   * ({@link BrowserUnresponsive}) would hang the first page call of the recording and be
   * relaunched then, a gap in the file: it is closed now and a fresh one (new profile) joins
   * once more, which costs start time instead (each counted in `capture.maxBrowserRestarts`).
   * @throws as {@link joinPage}; {@link BrowserUnresponsive} once the restarts are used up.
   */
  private async joinOrRelaunch(signal?: AbortSignal): Promise<void> {
    for (;;) {
      try {
        await this.joinPage(signal);
        return;
      } catch (err) {
        if (!(err instanceof BrowserUnresponsive) || this.closed || this.stopping || this.browserRestarts >= this.o.capture.maxBrowserRestarts) throw err;
        this.o.log.warn({ attempt: this.browserRestarts + 1 }, "the browser stopped answering once the page loaded; relaunching it before recording");
        this.browserRestarts++;
        await this.dropBrowser();
        await this.launchBrowser();
        this.abortIfStopped(signal);
      }
    }
  }

  /**
   * Kills the current browser as one that is given up (its disconnection is not a loss to
   * recover from). Killed, not closed: a browser that stopped answering took puppeteer's whole
   * 5 s close timeout here before it was killed anyway.
   */
  private async dropBrowser(): Promise<void> {
    const old = this.browser;
    this.browser = undefined;
    old?.kill();
    await old?.close().catch(() => undefined);
  }

  /** Launches the browser with a fresh profile on `about:blank`, and watches it (popups, crashes). */
  private async launchBrowser(): Promise<void> {
    const { o } = this;
    const log = o.log;
    const width = this.display!.width;
    const height = this.display!.height;
    this.browser = await this.adopt(RecorderBrowser.launch({
      kind: o.browser,
      executablePath: o.browser === "chromium" ? o.capture.chromiumPath : o.capture.firefoxPath,
      display: this.display!.name, width, height,
      profileDir: this.profileDir(this.browserRestarts), env: { ...this.marker, ...this.sink!.env() }, acceptInsecureCerts: o.acceptInsecureCerts,
      proxyPort: this.proxy!.port, extraArgs: o.capture.chromiumArgs, log,
    }));
    // The recorder records one tab: a window the page opens would cover the meeting and escape
    // the page's request rules, so it is closed at once (its connections still meet the proxy).
    const launchedPage = this.browser.page;
    this.browser.browser.on("targetcreated", (t) => {
      if (t.type() !== "page") return;
      void t.page().then(async (p) => {
        if (!p || p === launchedPage) return;
        const url = redactUrl(p.url() || t.url());
        await p.close().catch(() => undefined);
        this.hooks.event({ type: "popup_closed", message: `The meeting page opened a window (${url}); the recorder closed it`, data: { url } });
      }).catch(() => undefined);
    });
    const launched = this.browser;
    launched.browser.on("disconnected", () => {
      if (!this.stopping && this.live && this.browser === launched) void this.onBrowserLost();
    });
    // A crashed tab (renderer gone, browser alive): relaunch the whole browser and rejoin.
    launched.page.on("error", (err) => {
      if (this.stopping || !this.live || this.browser !== launched || this.rejoining) return;
      this.hooks.event({ type: "tab_crashed", message: `The meeting tab crashed (${publicErrorMessage(err)}); relaunching the browser`, data: { pid: launched.pid } });
      o.log.warn({ err: errorMessage(err) }, "tab crashed; killing the browser");
      launched.kill();
    });
    log.debug({ browser: o.browser, pid: this.browser.pid }, "browser started");
  }

  /** Opens the meeting page in the launched browser, under the recording's request rules, and joins. */
  private async joinPage(signal?: AbortSignal): Promise<void> {
    const { o } = this;
    const browser = this.browser!;
    await enforceRequestPolicy(browser.page, this.guard!, (b) => this.onBlocked(b));
    if (o.capture.mediaWatcher) await this.watcher.attach(browser.page);
    if (this.taps) await this.taps.attach(browser.page);
    await browser.page.evaluateOnNewDocument(CLOSE_HOOK);
    this.abortIfStopped(signal);
    try {
      let status: number | undefined;
      try {
        status = (await openPage(browser.page, o.url, o.capture.pageLoadTimeoutMs, o.log))?.status();
      } catch (err) {
        if (err instanceof BrowserUnresponsive) throw err; // no URL in it; joinOrRelaunch relaunches the browser
        // The browser's message repeats the URL, which may carry a token or a password: never in a message or a log.
        const why = withoutUrl(errorMessage(err), o.url);
        throw new MeetrecError("join_failed", `Cannot open the meeting page ${new URL(o.url).origin}: ${why.split("\n")[0]}`, { cause: new Error(why) });
      }
      // An error page is not a meeting (Talk answers 404 once a call is no longer starting).
      if (status !== undefined && status >= 400) {
        throw new MeetrecError("join_failed", `The meeting page answered HTTP ${status} (${new URL(o.url).origin}${new URL(o.url).pathname}); check the URL, or whether the meeting is still open`);
      }
      await runJoinSteps(browser.page, o.join, o.capture.joinStepTimeoutMs, signal);
      this.abortIfStopped(signal);
      if (o.adapter) await o.adapter.join(browser.page, signal);
      this.abortIfStopped(signal);
    } catch (err) {
      throw this.blocked ?? err; // a refused navigation is why the page or a step failed
    }
    if (this.blocked) throw this.blocked;
    this.pageAliveAt = Date.now();
    this.register();
    // The meeting's origin is where the first join left the page: the meeting URL may redirect,
    // and a `goto` step may lead elsewhere. A rejoin that ends on another origin means the page
    // left the meeting while the browser was down (nothing watched it then).
    const now = browser.page.url();
    if (this.meetingOrigin === undefined) this.meetingOrigin = httpOrigin(now) ?? new URL(o.url).origin;
    else if (this.live && leftMeeting(this.meetingOrigin, now)) this.pageEnded({ how: "navigated", url: redactUrl(now) });
    this.watchForEnd(browser);
    // A relaunched browser rejoined while the encoder runs: its tracks are recorded from now.
    if (this.encoder) this.startTracks();
  }

  /**
   * Watches the joined page for leaving the meeting: a top-level navigation away from the
   * meeting's origin ({@link leftMeeting}), or the page closing itself while its browser lives
   * on (a crash is a relaunch, not an end). `endedSelector`, and a `window.close()` the browser
   * refused ({@link CLOSE_HOOK}), are checked by the watchdog's probe once a second.
   */
  private watchForEnd(b: RecorderBrowser): void {
    const page = b.page;
    const origin = this.meetingOrigin!;
    const current = () => this.browser === b && !this.stopping && !this.closed && !this.rejoining;
    page.on("framenavigated", (f) => {
      if (f !== page.mainFrame() || !current() || !leftMeeting(origin, f.url())) return;
      this.pageEnded({ how: "navigated", url: redactUrl(f.url()) });
    });
    page.on("close", () => {
      // A crash closes the page too: only a page gone while its browser stays connected ended the meeting.
      setTimeout(() => { if (current() && b.browser.connected) this.pageEnded({ how: "closed" }); }, 500).unref();
    });
  }

  private endedReported = false;
  /** The origin the page was on after its first join ({@link joinPage}): leaving it ends the meeting. */
  private meetingOrigin?: string;

  private pageEnded(e: PageEnded): void {
    if (this.endedReported) return;
    this.endedReported = true;
    this.o.log.info({ how: e.how, url: e.url }, "the page left the meeting");
    this.hooks.ended?.(e);
  }

  /**
   * A top-level navigation was refused: the page cannot show the meeting any more. While
   * joining, the join fails with this error; while recording, the session fails (the media so
   * far is kept). Either way the blocked URL (redacted) is on the timeline.
   */
  private onBlocked(b: BlockedRequest): void {
    const key = `${b.navigation ? "nav" : "req"} ${b.url}`;
    if (!this.reported.has(key) && this.reported.size < 100) {
      this.reported.add(key);
      this.hooks.event({
        type: b.navigation ? "navigation_blocked" : "request_blocked",
        message: `The recorder's page was stopped from ${b.navigation ? "opening" : "loading"} ${b.url}: ${b.refusal.message}`,
        data: { url: b.url, rule: b.refusal.rule },
      });
      this.o.log.warn({ url: b.url, rule: b.refusal.rule, navigation: b.navigation }, "request blocked by the egress policy");
    }
    if (!b.navigation || this.blocked || this.stopping) return;
    this.blocked = egressError(b.url, b.refusal);
    if (this.live) this.hooks.failed(this.blocked);
  }

  /**
   * The egress proxy refused a connection (a WebSocket, a rebinding name, a worker's fetch …).
   * Address-rule refusals go on the timeline; an origin-list refusal there is usually the
   * browser's own call home (the page's requests were already judged and reported by the
   * interception), so it is only logged.
   */
  private onProxyRefused(hostPort: string, refusal: EgressRefusal): void {
    if (refusal.rule === "origin") {
      this.o.log.debug({ host: hostPort }, "connection outside the origin lists refused by the egress proxy");
      return;
    }
    const key = `proxy ${hostPort}`;
    if (this.reported.has(key) || this.reported.size >= 100) return;
    this.reported.add(key);
    this.hooks.event({ type: "request_blocked", message: `The recorder's browser was stopped from connecting to ${hostPort}: ${refusal.message}`, data: { host: hostPort, rule: refusal.rule } });
    this.o.log.warn({ host: hostPort, rule: refusal.rule }, "connection refused by the egress proxy");
  }

  /**
   * The browser profile of launch `n`: scratch in the system's temporary directory, not on the
   * data filesystem (a profile is megabytes the disk guard would otherwise have to count).
   */
  private profileDir(n: number): string {
    return join(tmpdir(), profileDirName(this.profileId, n));
  }

  /** Keeps the process registry (orphans.ts) current. */
  private register(): void {
    registerProcesses(this.o.workDir, { ...this.pids });
  }

  /**
   * Every second: an encoder that closed no segment, or a page that answered no probe, for
   * `capture.stallSegments` segment durations is hung. A hung encoder is killed (→ a new
   * period); a hung page's browser is killed (→ relaunch and rejoin, {@link onBrowserLost}).
   */
  private startWatchdog(): void {
    const limitMs = this.o.capture.stallSegments * this.o.capture.segmentSeconds * 1000;
    this.watchdog = setInterval(() => {
      if (this.stopping || this.closed) return;
      const now = Date.now();
      const enc = this.encoder;
      if (enc?.running && now - this.lastSegmentAt > limitMs) {
        const silentMs = now - this.lastSegmentAt;
        this.hooks.event({ type: "encoder_hung", message: `The encoder closed no segment for ${(silentMs / 1000).toFixed(1)} s; restarting it`, data: { period: this.period, silentMs, pid: enc.pid } });
        this.o.log.warn({ period: this.period, silentMs }, "encoder hung; killing it");
        this.lastSegmentAt = now; // one kill per stall
        enc.kill("SIGKILL");
      }
      const b = this.browser;
      if (!b || this.rejoining) return;
      if (now - this.pageAliveAt > limitMs) {
        const silentMs = now - this.pageAliveAt;
        this.hooks.event({ type: "page_hung", message: `The meeting page did not respond for ${(silentMs / 1000).toFixed(1)} s; relaunching the browser`, data: { silentMs, pid: b.pid } });
        this.o.log.warn({ silentMs }, "page hung; killing the browser");
        this.pageAliveAt = now;
        b.kill(); // → "disconnected" → onBrowserLost
        return;
      }
      if (this.probing !== b) {
        this.probing = b;
        // The probe also looks for the "meeting ended" selector (null: none configured).
        // and whether the page asked to close its tab (CLOSE_HOOK), which the browser may refuse.
        const selector = this.live ? this.o.endedSelector ?? null : null;
        void b.page.evaluate((sel: string | null, flag: string) => ({
          shown: sel ? document.querySelector(sel) !== null : false,
          closeAsked: (window as unknown as Record<string, unknown>)[flag] === true,
        }), selector, CLOSE_ASKED).then(
          ({ shown, closeAsked }) => {
            if (this.browser !== b) return;
            this.pageAliveAt = Date.now();
            if (shown && selector) this.pageEnded({ how: "selector", selector });
            else if (closeAsked && this.live) this.pageEnded({ how: "closed" });
          },
          () => undefined,
        ).finally(() => { if (this.probing === b) this.probing = undefined; });
      }
    }, 1000);
    this.watchdog.unref();
  }

  /**
   * The browser died during the recording: relaunch it and rejoin, while the encoder goes on
   * capturing the display (so nothing is lost; the gap shows an empty screen). Bounded by
   * `capture.maxBrowserRestarts`; then the session fails and what was captured is kept.
   */
  private async onBrowserLost(): Promise<void> {
    const lostAt = Date.now();
    const { o } = this;
    this.hooks.event({ type: "browser_disconnected", message: "The browser closed or crashed during the recording; rejoining" });
    o.log.warn({ restarts: this.browserRestarts }, "browser lost; relaunching");
    this.rejoining = true;
    try {
      await this.relaunch(lostAt);
    } finally {
      this.rejoining = false;
    }
  }

  private async relaunch(lostAt: number): Promise<void> {
    const { o } = this;
    while (!this.stopping && !this.closed) {
      if (this.browserRestarts >= o.capture.maxBrowserRestarts) {
        this.hooks.failed(new MeetrecError("browser_failed", `The browser crashed ${this.browserRestarts + 1} times; the media captured so far is kept`));
        return;
      }
      this.browserRestarts++;
      await this.dropBrowser();
      try {
        await this.launchAndJoin();
        const gapMs = Date.now() - lostAt;
        this.hooks.event({ type: "browser_rejoined", message: `Browser relaunched and rejoined after ${(gapMs / 1000).toFixed(1)} s`, data: { gapMs, attempt: this.browserRestarts, pid: this.browser?.pid } });
        o.log.info({ gapMs, pid: this.browser?.pid }, "browser rejoined");
        return;
      } catch (err) {
        if (this.stopping || this.closed) return;
        o.log.warn({ err: errorMessage(err), attempt: this.browserRestarts }, "rejoining failed");
        this.hooks.event({ type: "browser_rejoin_failed", message: `Rejoining failed: ${publicErrorMessage(err)}`, data: { attempt: this.browserRestarts } });
        await sleep(1000);
      }
    }
  }

  /** Awaits a resource being started; if the session was closed meanwhile, closes it and throws. */
  private async adopt<T extends { close(): Promise<void> }>(starting: Promise<T>): Promise<T> {
    const r = await starting;
    if (this.closed) {
      await r.close().catch(() => undefined);
      throw new MeetrecError("join_failed", "Stopped while joining the meeting");
    }
    return r;
  }

  private abortIfStopped(signal?: AbortSignal): void {
    if (signal?.aborted) throw new MeetrecError("join_failed", "Stopped while joining the meeting");
  }

  private async startEncoder(reason: string): Promise<void> {
    const startedAt = new Date();
    const period = await this.hooks.beginPeriod(reason, startedAt);
    this.period = period;
    const dir = join(this.o.workDir, periodDir(period));
    mkdirSync(dir, { recursive: true });
    const { video, capture } = this.o;
    const enc = new Encoder({
      mode: this.o.mode, audioCodec: this.o.audioCodec, audio: this.o.audio, display: this.display!.name, width: video.width, height: video.height, fps: video.fps,
      bitrateKbps: video.bitrateKbps, audioBitrateKbps: capture.audioBitrateKbps, audioDelayMs: capture.audioDelayMs, monitor: this.sink!.monitor,
      pulseServer: this.o.pulse.server, segmentSeconds: capture.segmentSeconds, firstSegmentSeconds: capture.firstSegmentSeconds, x264Preset: capture.x264Preset, x264Params: capture.x264Params,
      dir, ffmpegPath: capture.ffmpegPath, env: this.marker,
      // Media time 0 = the period's start as the manifest has it, so a wall-clock time maps
      // exactly to a time in the file (speaker intervals, RecordingFile.timeline).
      origin: startedAt.getTime(),
    });
    this.encoder = enc;
    this.lastSegmentAt = Date.now();
    this.firstOrigin ??= enc.startedAt;
    this.register();
    const queue = (fn: () => Promise<void>) => {
      this.ingest = this.ingest.then(fn).catch((err) => {
        this.ingestError = err;
        this.o.log.error({ err: errorMessage(err) }, "storing media failed");
        this.hooks.event({ type: "store_error", message: `Storing media failed: ${publicErrorMessage(err)}` });
      });
    };
    enc.on("init", (path) => queue(() => this.hooks.init(period, path)));
    enc.on("segment", (seg) => {
      if (this.encoder === enc) this.lastSegmentAt = Date.now();
      this.pending++;
      queue(() => this.hooks.segment(period, seg).finally(() => { this.pending--; }));
    });
    enc.on("media", (at) => this.hooks.mediaFlowing(period, at));
    enc.on("exit", (info) => void this.onEncoderExit(period, info));
    this.startTracks();
    this.o.log.info({ period, pid: enc.pid, reason }, "encoder started");
  }

  private async onEncoderExit(period: number, info: EncoderExit): Promise<void> {
    if (info.requested || this.stopping || this.closed) return;
    const detail = info.stderr.trim().split("\n").slice(-3).join(" | ");
    // Events and the error reach API clients: ffmpeg's lines name files in the work directory.
    const shown = withoutPaths(detail, [this.o.workDir]);
    this.hooks.event({
      type: "encoder_exited", message: `Encoder exited unexpectedly (code ${info.code ?? info.signal}) in period ${period}`,
      data: { period, code: info.code, signal: info.signal, stderr: shown },
    });
    this.o.log.warn({ period, code: info.code, signal: info.signal, stderr: detail }, "encoder exited unexpectedly");
    if (this.restarts >= this.o.capture.maxEncoderRestarts) {
      this.hooks.failed(new MeetrecError("encoder_failed", `The encoder died ${this.restarts + 1} times (last: ${shown || `code ${info.code ?? info.signal}`}); the segments captured so far are kept`));
      return;
    }
    this.restarts++;
    await sleep(Math.min(2000, 250 * this.restarts));
    if (this.stopping || this.closed) return;
    try {
      await this.startEncoder("encoder_restart");
    } catch (err) {
      this.o.log.error({ err: errorMessage(err) }, "cannot restart the encoder");
      this.hooks.failed(new MeetrecError("encoder_failed", `Cannot restart the encoder: ${withoutPaths(publicErrorMessage(err), [this.o.workDir])}`, { cause: err }));
    }
  }

  /** Media segments closed by the encoder and not yet stored by the hooks. */
  get pendingSegments(): number {
    return this.pending;
  }

  /** Wallclock (ms since epoch) at media time 0 of the first period, once capture has begun. */
  get captureStartedAt(): number | undefined {
    return this.firstOrigin;
  }

  /**
   * Stops capturing: the encoder closes its open segment, every closed segment is handed to
   * the hooks, then browser, sink and display are closed. Idempotent.
   * @throws the first error a hook raised while storing media (after everything is closed).
   */
  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.watchdog);
    try {
      // Read while the page is still recorded, so a stretch open at the stop ends inside the file.
      await this.collectSpeakers();
      this.watcher.flushSpeaking();
      await this.speakingStored;
      const tracks = this.taps?.stop();
      if (this.encoder) await this.encoder.stop();
      await this.ingest;
      await tracks;
      await this.taps?.drain(3000);
    } finally {
      await this.close();
    }
    if (this.ingestError) throw this.ingestError;
  }

  /**
   * Hands the speaking stretches of the current page to the hooks, once per page: reading is
   * bounded to 3 s (a hung page gives none), storing is awaited.
   */
  private async collectSpeakers(): Promise<void> {
    const page = this.browser?.page;
    const read = this.o.adapter?.speakers;
    if (!page || !read || this.speakersRead === page) return;
    this.speakersRead = page;
    const intervals = await Promise.race([read.call(this.o.adapter, page).catch(() => []), sleep(3000).then(() => [])]);
    if (intervals.length > 0) await this.hooks.speakers?.(intervals);
  }

  /**
   * Closes every resource at once (no graceful encoder stop). Idempotent, never throws; every
   * caller resolves only when everything is closed.
   */
  close(): Promise<void> {
    this.stopping = true;
    this.closed = true;
    clearInterval(this.watchdog);
    this.closing ??= (async () => {
      if (this.encoder?.running) this.encoder.kill("SIGKILL");
      await this.taps?.drain(0);
      await this.collectSpeakers();
      if (this.o.adapter && this.browser) {
        const page = this.browser.page;
        await Promise.race([this.o.adapter.leave(page).catch(() => undefined), sleep(3000)]);
      }
      await this.browser?.close().catch(() => undefined);
      await this.sink?.close().catch(() => undefined);
      await this.display?.close().catch(() => undefined);
      await this.proxy?.close();
      for (let i = 0; i <= this.browserRestarts; i++) { try { removeProfile(this.profileDir(i)); } catch { /* scratch: a later start removes it */ } }
    })();
    return this.closing;
  }
}
