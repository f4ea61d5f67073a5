/**
 * Stopping when the meeting is over, from what the media watcher sees (capture/watcher.ts):
 *
 * - **empty** — no remote media source for `emptySeconds`: everyone left. Armed only once a
 *   source has been seen (a page that never receives media — a dashboard, a page that is not a
 *   WebRTC meeting — is never "empty").
 * - **idle** — sources present, but none audible and no video flowing for `idleSeconds`
 *   (everyone muted with cameras off).
 *
 * A source that comes back within the window cancels the countdown (a reconnect is not an
 * end). The countdowns run only while the recording records: the join is never judged.
 */
import type { MeetingState } from "../capture/index.js";

/** What ends a recording by itself, and after how long, s (0 = never). */
export interface AutoStopSettings {
  emptySeconds: number;
  idleSeconds: number;
}

/** Why the meeting is over, as a recording's `endReason`. */
export type AutoStopReason = "meeting_empty" | "meeting_idle";

/** A due stop: the reason, since when (wallclock ms) the meeting has been so, and a message for the timeline. */
export interface AutoStopDecision {
  reason: AutoStopReason;
  sinceMs: number;
  message: string;
}

/** See module doc. Feed it every watcher state with {@link AutoStop.observe}. */
export class AutoStop {
  private emptySince?: number;
  private idleSince?: number;
  private sawSource = false;

  constructor(private readonly s: AutoStopSettings) {}

  /**
   * Takes the meeting as seen at `now` (wallclock, ms); returns the stop that is due, if one is.
   * Pure bookkeeping: it starts nothing and may be called as often as states come.
   */
  observe(state: MeetingState, now: number): AutoStopDecision | undefined {
    if (state.participants > 0) this.sawSource = true;
    const empty = this.sawSource && state.participants === 0;
    this.emptySince = empty ? (this.emptySince ?? now) : undefined;
    const idle = state.participants > 0 && !state.audible && !state.media.video;
    this.idleSince = idle ? (this.idleSince ?? now) : undefined;
    if (this.s.emptySeconds > 0 && this.emptySince !== undefined && now - this.emptySince >= this.s.emptySeconds * 1000) {
      return { reason: "meeting_empty", sinceMs: this.emptySince, message: `No participant's media for ${this.s.emptySeconds} s: everyone left the meeting; stopping` };
    }
    if (this.s.idleSeconds > 0 && this.idleSince !== undefined && now - this.idleSince >= this.s.idleSeconds * 1000) {
      return { reason: "meeting_idle", sinceMs: this.idleSince, message: `Nobody spoke and no camera was on for ${this.s.idleSeconds} s; stopping` };
    }
    return undefined;
  }
}
