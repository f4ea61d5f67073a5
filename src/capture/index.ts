/** capture: one recording session (display, sink, browser, join steps, encoder). */
export { CaptureSession, sameStage, sameStack, type SessionOptions, type SessionHooks, type SessionEvent, type SessionPids, type PlatformAdapter } from "./session.js";
export { PulseServer, SharedPulse, defaultPulseDir } from "./audio.js";
export { XvfbDisplay } from "./display.js";
export { RecorderBrowser, type BrowserKind } from "./browser.js";
export { Encoder, encoderArgs, parsePlaylist, parseProgress } from "./encoder.js";
export { JoinStep, JoinSteps, stepOrigins } from "./join.js";
export { killRegisteredProcesses, profileDirPrefix, RECORDING_ENV, removeLeftoverProfiles } from "./orphans.js";
export { MediaWatcher, type MeetingState } from "./watcher.js";
export { TrackTaps, type TrackSink } from "./tracks.js";
export { WarmPool, idleHooks } from "./pool.js";
