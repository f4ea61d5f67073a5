/**
 * Who speaks when, from each inbound audio track's level as the media watcher reports it
 * (capture/watcher.ts): a voice-activity detector per track with a hangover.
 *
 * - A report window of a track is **voiced** when its RMS level (0–1, linear, from the page's
 *   `totalAudioEnergy` / `totalSamplesDuration` deltas over the window; `audioLevel` where the
 *   browser gives no energy) is ≥ {@link SPEAKING_LEVEL}.
 * - A stretch **starts** in its first voiced window and **stops** in its last voiced window, once
 *   {@link HANGOVER_MS} have passed without one (pauses between words and syllables stay inside
 *   the stretch). Where in that window: a window only partly voiced carries that part of the
 *   energy of a fully voiced neighbour, so the edge is placed at the fraction `rms² / rms²(the
 *   voiced window next to it)` (clamped to the window) from the voiced side — exact for a steady
 *   source, within the window for speech.
 * - A track that disappears (its connection closed) ends its stretch (`left`); a stretch still
 *   open when the recording stops ends then (`stillSpeaking`), as Talk's sidecar names them.
 *
 * Accuracy: within one report window (250 ms) at both ends, plus the receive path (the jitter
 * buffer; the level is measured where the page plays the sound, as it is recorded).
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

/** One report window of one track: `[fromMs, toMs)` at RMS `level`. */
interface Window { fromMs: number; toMs: number; level: number }

interface Open {
  /** The first voiced window, until the next one places the start within it. */
  first?: Window;
  startMs: number;
  /** The last voiced window and the voiced one before it (if adjacent). */
  last: Window;
  before?: Window;
}

/** Fraction of `w` voiced, from its energy against the adjacent fully voiced window `full`. */
function voicedPart(w: Window, full: Window | undefined): number {
  if (!full || full.level <= 0) return 1;
  return Math.min(1, Math.max(0, (w.level / full.level) ** 2));
}

/** Where the stretch that ends with `o.last` stops, ms. */
function stopOf(o: Open): number {
  const { last, before } = o;
  const adjacent = before && before.toMs === last.fromMs ? before : undefined;
  return Math.round(last.fromMs + voicedPart(last, adjacent) * (last.toMs - last.fromMs));
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
    const w: Window = { fromMs, toMs, level };
    if (level >= SPEAKING_LEVEL) {
      if (o && fromMs - o.last.toMs <= HANGOVER_MS) {
        if (o.first) {
          // the second voiced window: the first one was voiced from the fraction of it at its end
          if (o.first.toMs === fromMs) o.startMs = Math.round(o.first.toMs - voicedPart(o.first, w) * (o.first.toMs - o.first.fromMs));
          o.first = undefined;
        }
        o.before = o.last;
        o.last = w;
        return undefined;
      }
      this.open.set(track, { first: w, startMs: fromMs, last: w });
      return o ? { track, startMs: o.startMs, stopMs: stopOf(o), stopType: "silence" } : undefined;
    }
    if (o && toMs - o.last.toMs > HANGOVER_MS) {
      this.open.delete(track);
      return { track, startMs: o.startMs, stopMs: stopOf(o), stopType: "silence" };
    }
    return undefined;
  }

  /** `track` went away: its open stretch ends (`left`) at its last voiced moment. */
  gone(track: string): SpeakingStretch | undefined {
    const o = this.open.get(track);
    if (!o) return undefined;
    this.open.delete(track);
    return { track, startMs: o.startMs, stopMs: stopOf(o), stopType: "left" };
  }

  /** The recording stops at `atMs`: every open stretch ends, `stillSpeaking` (at `atMs` when still within its hangover). */
  flush(atMs: number): SpeakingStretch[] {
    const out = [...this.open].map(([track, o]) => ({ track, startMs: o.startMs, stopMs: Math.max(o.last.toMs, Math.min(atMs, o.last.toMs + HANGOVER_MS)), stopType: "stillSpeaking" as const }));
    this.open.clear();
    return out;
  }
}
