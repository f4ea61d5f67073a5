/**
 * The media watcher: what the meeting page receives, seen from inside the page on any WebRTC
 * platform, without a platform SDK. A script injected before any page script runs wraps the
 * page's `RTCPeerConnection` (instances and `track` events; nothing the page does or sends
 * changes), reads `getStats()` of every connection four times a second (W3C webrtc-stats
 * `inbound-rtp`: `bytesReceived`, `framesDecoded`, `audioLevel`, `totalAudioEnergy`,
 * `totalSamplesDuration`) and hands a compact snapshot to meetrec through a puppeteer binding
 * (not console parsing). The Node side turns snapshots into the meeting's state: its live
 * remote media sources (a remote `MediaStream`, i.e. one participant's camera + microphone),
 * whether sound and pictures flow; and each audio track's level per report window into who
 * speaks when (capture/speaking.ts). Every `track` event is also handed to the per-participant
 * recorders (capture/tracks.ts) when the recording asked for them.
 */
import { EventEmitter } from "node:events";
import type { Page } from "puppeteer-core";
import { SpeakingDetector, type SpeakingStretch } from "./speaking.js";

/** Name of the binding the page script reports through. */
export const WATCHER_BINDING = "__meetrecMediaReport";

/** How often the page reports, ms: the resolution of who speaks when. */
export const REPORT_INTERVAL_MS = 250;

/**
 * A track counts as live while its bytes (audio) or decoded frames (video) grew within this
 * long, ms: two reports without growth (a blip of one late report is not a departure).
 */
export const LIVE_WINDOW_MS = 2500;

/** A report whose page time is older than this at arrival is timed by its arrival instead, ms ({@link MediaWatcher.take}). */
export const MAX_REPORT_AGE_MS = 5000;

/**
 * A live audio track is audible when its level (webrtc-stats `audioLevel`, linear 0–1) is at
 * least this: 0.01 ≈ −40 dBFS, above comfort noise and below quiet speech.
 */
export const AUDIBLE_LEVEL = 0.01;

/** One inbound track as the page reports it. */
export interface TrackReport {
  /**
   * The track: its peer connection's number and `MediaStreamTrack.id` (stats'
   * `trackIdentifier`, else the stats id), `3/janusa0` — SFUs reuse track ids across connections.
   */
  track: string;
  /**
   * The remote stream the track arrived in: its peer connection's number and the `track`
   * event's `streams[0].id` (`3/abc`), else the track id. SFUs that put every track in one
   * stream (Janus: `janus`) are told apart by counting tracks, see {@link MediaWatcher.take}.
   */
  stream: string;
  kind: "audio" | "video";
  /** Bytes received so far. */
  bytes: number;
  /** Video frames decoded so far (video). */
  frames?: number;
  /** Audio level now, 0–1 (linear, as webrtc-stats `audioLevel`). */
  level?: number;
  /** Audio energy so far (webrtc-stats `totalAudioEnergy`). */
  energy?: number;
  /** Audio duration so far, s (webrtc-stats `totalSamplesDuration`). */
  duration?: number;
}

/** A snapshot from the page. */
export interface WatcherReport {
  /** Page time of the report (`Date.now()` in the page), ms. */
  at: number;
  /** Peer connections open in the page. */
  peerConnections: number;
  tracks: TrackReport[];
}

/** The meeting as the recorder sees it now. */
export interface MeetingState {
  /** Remote media sources (streams) with live media now. */
  participants: number;
  /** Most participants seen at once since the recorder joined. */
  peakParticipants: number;
  /** Whether remote sound / pictures are flowing now. */
  media: { audio: boolean; video: boolean };
  /** Remote video tracks the page has that have not decoded a frame yet (a picture still coming). */
  videoPending: number;
  /** Whether a live audio track is audible now (level ≥ {@link AUDIBLE_LEVEL}). */
  audible: boolean;
  /** Peer connections the page has open. */
  peerConnections: number;
  /** Wallclock (ms) of the last report, 0 before the first. */
  at: number;
}

/** Typed events of {@link MediaWatcher}. */
export interface WatcherEvents {
  /** A report was taken in; `state` is the meeting now. */
  state: [state: MeetingState];
  /** A stretch of speaking on one audio track ended (see capture/speaking.ts). */
  speaking: [stretch: SpeakingStretch];
}

/**
 * The page script (runs in the page, before its own scripts): wraps `RTCPeerConnection` and
 * reports every {@link REPORT_INTERVAL_MS} through the binding. Plain JavaScript in a string:
 * a TypeScript function would carry the transpiler's helpers (`__name`) into the page.
 */
const PAGE_SCRIPT = `(() => {
  if (window.__meetrecWatcher) return;
  window.__meetrecWatcher = true;
  const Native = window.RTCPeerConnection;
  if (!Native) return;
  const pcs = new Map();
  const streamOf = new Map();
  let n = 0;
  class Watched extends Native {
    constructor(...args) {
      super(...args);
      const pc = ++n;
      pcs.set(this, pc);
      this.addEventListener("track", (e) => {
        streamOf.set(pc + "/" + e.track.id, pc + "/" + (e.streams[0] ? e.streams[0].id : e.track.id));
        if (typeof window.__meetrecOnTrack === "function") { try { window.__meetrecOnTrack(pc, e); } catch {} }
      });
    }
  }
  Object.defineProperty(Watched, "name", { value: "RTCPeerConnection" });
  Object.defineProperty(window, "RTCPeerConnection", { value: Watched, writable: true, configurable: true });
  if ("webkitRTCPeerConnection" in window) Object.defineProperty(window, "webkitRTCPeerConnection", { value: Watched, writable: true, configurable: true });
  setInterval(async () => {
    const report = window[${JSON.stringify(WATCHER_BINDING)}];
    if (typeof report !== "function") return;
    const tracks = [];
    for (const [pc, number] of [...pcs]) {
      if (pc.connectionState === "closed" || pc.signalingState === "closed") { pcs.delete(pc); continue; }
      let stats;
      try { stats = await pc.getStats(); } catch { continue; }
      stats.forEach((s) => {
        if (s.type !== "inbound-rtp" || (s.kind !== "audio" && s.kind !== "video")) return;
        const track = number + "/" + String(s.trackIdentifier ?? s.id);
        const t = { track, stream: streamOf.get(track) ?? track, kind: s.kind, bytes: Number(s.bytesReceived ?? 0) };
        if (s.kind === "video") t.frames = Number(s.framesDecoded ?? 0);
        else { t.level = Number(s.audioLevel ?? 0); t.energy = Number(s.totalAudioEnergy ?? 0); t.duration = Number(s.totalSamplesDuration ?? 0); }
        tracks.push(t);
      });
    }
    Promise.resolve(report({ at: Date.now(), peerConnections: pcs.size, tracks })).catch(() => undefined);
  }, ${REPORT_INTERVAL_MS});
})();`;

/** What the watcher remembers of one track. */
interface TrackSeen {
  stream: string;
  kind: "audio" | "video";
  /** Bytes (audio) or frames (video) at the last report. */
  count: number;
  /** Audio level at the last report (audio). */
  level: number;
  /** Audio energy and duration (s) at the last report, and its wall clock (ms). */
  energy: number;
  duration: number;
  at: number;
  /** Wallclock (ms) the count last grew; undefined while it never did. */
  grewAt?: number;
}

/**
 * The Node side (see module doc). {@link MediaWatcher.attach} to every page a session opens,
 * before it navigates; read {@link MediaWatcher.state} or listen to `state`.
 */
export class MediaWatcher extends EventEmitter<WatcherEvents> {
  private readonly tracks = new Map<string, TrackSeen>();
  private readonly speaking = new SpeakingDetector();
  private current: MeetingState = { participants: 0, peakParticipants: 0, media: { audio: false, video: false }, videoPending: 0, audible: false, peerConnections: 0, at: 0 };

  /** The meeting now. */
  get state(): MeetingState {
    return this.current;
  }

  /**
   * Installs the page script and the binding on `page` (call before `goto`; again for each
   * relaunched browser's page). @throws puppeteer's error when the page is gone.
   */
  async attach(page: Page): Promise<void> {
    await page.exposeFunction(WATCHER_BINDING, (report: WatcherReport) => { this.take(report); });
    await page.evaluateOnNewDocument(PAGE_SCRIPT);
  }

  /** The recording stops at `now` (wall clock, ms): every stretch still open ends (`stillSpeaking`), each emitted as `speaking`. */
  flushSpeaking(now = Date.now()): void {
    for (const s of this.speaking.flush(now)) this.emit("speaking", s);
  }

  /** The time of the last report taken in, ms (reports are timed in order, {@link take}). */
  private lastAt = 0;

  /**
   * Takes in one report (the binding's handler; tests feed it directly). `now`: wallclock at
   * arrival, ms. The report is timed by the page's own clock (`report.at`, the same machine's
   * wall clock, read when its stats were gathered), not by its arrival: Firefox hands binding
   * calls over late — measured in a two-publisher meeting here: median 21–31 ms, 90th
   * percentile 70–170 ms, worst ~600 ms (Chromium: 1 ms, 3 ms, 161 ms) — and a speaking
   * stretch's edge moved with it. A page time more than {@link MAX_REPORT_AGE_MS} before `now`,
   * or after it, is not believed (a page that replaced `Date.now`): then `now`. Never earlier
   * than the previous report's time.
   */
  take(report: WatcherReport, now = Date.now()): MeetingState {
    const pageAt = Number(report.at);
    const at = Math.max(this.lastAt, Number.isFinite(pageAt) && pageAt <= now && now - pageAt <= MAX_REPORT_AGE_MS ? pageAt : now);
    this.lastAt = at;
    const seen = new Set<string>();
    for (const t of report.tracks ?? []) {
      if (!t || typeof t.track !== "string" || (t.kind !== "audio" && t.kind !== "video")) continue;
      seen.add(t.track);
      const count = Number(t.kind === "video" ? t.frames ?? 0 : t.bytes) || 0;
      const prev = this.tracks.get(t.track);
      const level = Number(t.level) || 0;
      const energy = Number(t.energy) || 0;
      const duration = Number(t.duration) || 0;
      if (!prev) this.tracks.set(t.track, { stream: String(t.stream ?? t.track), kind: t.kind, count, level, energy, duration, at, grewAt: count > 0 ? at : undefined });
      else {
        if (t.kind === "audio") {
          // RMS over the window from the energy integral; the instantaneous level where the browser keeps none.
          const dd = duration - prev.duration;
          const rms = dd > 0 && energy >= prev.energy ? Math.sqrt((energy - prev.energy) / dd) : level;
          const ended = this.speaking.window(t.track, prev.at, at, count > prev.count ? rms : 0);
          if (ended) this.emit("speaking", ended);
        }
        Object.assign(prev, { level, energy, duration, at });
        if (count > prev.count) { prev.count = count; prev.grewAt = at; }
      }
    }
    for (const id of [...this.tracks.keys()]) {
      if (seen.has(id)) continue;
      this.tracks.delete(id); // its connection closed
      const ended = this.speaking.gone(id);
      if (ended) this.emit("speaking", ended);
    }
    const live = [...this.tracks.values()].filter((t) => t.grewAt !== undefined && at - t.grewAt <= LIVE_WINDOW_MS);
    // A participant is a remote stream with a camera and/or a microphone; a stream holding
    // several tracks of one kind (an SFU that puts everyone in one stream) holds that many.
    const streams = new Map<string, { audio: number; video: number }>();
    for (const t of live) {
      const s = streams.get(t.stream) ?? { audio: 0, video: 0 };
      s[t.kind]++;
      streams.set(t.stream, s);
    }
    const participants = [...streams.values()].reduce((sum, s) => sum + Math.max(s.audio, s.video), 0);
    this.current = {
      participants, peakParticipants: Math.max(this.current.peakParticipants, participants),
      media: { audio: live.some((t) => t.kind === "audio"), video: live.some((t) => t.kind === "video") },
      videoPending: [...this.tracks.values()].filter((t) => t.kind === "video" && t.grewAt === undefined).length,
      audible: live.some((t) => t.kind === "audio" && t.level >= AUDIBLE_LEVEL),
      peerConnections: Number(report.peerConnections) || 0, at,
    };
    this.emit("state", this.current);
    return this.current;
  }
}
