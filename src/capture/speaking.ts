/**
 * Who speaks when, from each inbound audio track's level as the media watcher reports it
 * (capture/watcher.ts): a voice-activity detector per track with a hangover.
 *
 * - A report window of a track is **voiced** when its RMS level (0–1, linear, from the page's
 *   `totalAudioEnergy` / `totalSamplesDuration` deltas over the window; `audioLevel` where the
 *   browser gives no energy) is ≥ {@link SPEAKING_LEVEL}.
 * - A stretch **starts** at the beginning of its first voiced window and **stops** at the end of
 *   its last voiced window, once {@link HANGOVER_MS} have passed without one (pauses between
 *   words and syllables stay inside the stretch).
 * - A track that disappears (its connection closed) ends its stretch (`left`); a stretch still
 *   open when the recording stops ends then (`stillSpeaking`), as Talk's sidecar names them.
 *
 * Accuracy: the report interval (250 ms) at both ends; a tone or voice that starts mid-window
 * may start up to one window early.
 */

/** RMS level (linear, 0–1; −40 dBFS) at or above which a window is voiced. */
export const SPEAKING_LEVEL = 0.01;
/** How long a track must stay below {@link SPEAKING_LEVEL} before its stretch ends, ms. */
export const HANGOVER_MS = 600;

/** One stretch of speaking on one track, wall clock (ms since the epoch). */
export interface SpeakingStretch {
  /** The track (`{pc}/{trackId}`, as the watcher names it). */
  track: string;
  startMs: number;
  stopMs: number;
  /** Why it ended: `silence` (the hangover passed), `left` (the track went away), `stillSpeaking` (the recording stopped). */
  stopType: "silence" | "left" | "stillSpeaking";
}

interface Open {
  startMs: number;
  /** End of the last voiced window, ms. */
  lastVoicedMs: number;
}

/** See module doc. Feed it windows in time order per track; it returns the stretches that closed. */
export class SpeakingDetector {
  private readonly open = new Map<string, Open>();

  /**
   * Takes one window `[fromMs, toMs)` of `track` at RMS `level`. Returns the stretch that ended
   * (the hangover passed before this window), if any.
   */
  window(track: string, fromMs: number, toMs: number, level: number): SpeakingStretch | undefined {
    const o = this.open.get(track);
    if (level >= SPEAKING_LEVEL) {
      if (o && fromMs - o.lastVoicedMs <= HANGOVER_MS) { o.lastVoicedMs = toMs; return undefined; }
      this.open.set(track, { startMs: fromMs, lastVoicedMs: toMs });
      return o ? { track, startMs: o.startMs, stopMs: o.lastVoicedMs, stopType: "silence" } : undefined;
    }
    if (o && toMs - o.lastVoicedMs > HANGOVER_MS) {
      this.open.delete(track);
      return { track, startMs: o.startMs, stopMs: o.lastVoicedMs, stopType: "silence" };
    }
    return undefined;
  }

  /** `track` went away: its open stretch ends (`left`) at its last voiced moment. */
  gone(track: string): SpeakingStretch | undefined {
    const o = this.open.get(track);
    if (!o) return undefined;
    this.open.delete(track);
    return { track, startMs: o.startMs, stopMs: o.lastVoicedMs, stopType: "left" };
  }

  /** The recording stops at `atMs`: every open stretch ends, `stillSpeaking` (at `atMs` when still within its hangover). */
  flush(atMs: number): SpeakingStretch[] {
    const out = [...this.open].map(([track, o]) => ({ track, startMs: o.startMs, stopMs: Math.max(o.lastVoicedMs, Math.min(atMs, o.lastVoicedMs + HANGOVER_MS)), stopType: "stillSpeaking" as const }));
    this.open.clear();
    return out;
  }
}
