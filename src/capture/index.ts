/** capture: one recording session (display, sink, browser, join steps, encoder). */
export { CaptureSession, sameStage, type SessionOptions, type SessionHooks, type SessionEvent, type SessionPids, type PlatformAdapter } from "./session.js";
export { PulseServer, SharedPulse, NullSink, defaultPulseDir } from "./audio.js";
export { XvfbDisplay } from "./display.js";
export { RecorderBrowser, type BrowserKind } from "./browser.js";
export { Encoder, encoderArgs, parsePlaylist, parseProgress, type EncoderProgress, type EncoderEvents, type ClosedSegment, type EncoderOptions, type EncoderExit } from "./encoder.js";
export { JoinStep, JoinSteps, runJoinSteps, describeStep, stepOrigins } from "./join.js";
export { registerProcesses, killRegisteredProcesses, recordingEnv, profileDirPrefix, RECORDING_ENV, type RegisteredProcess } from "./orphans.js";
export { MediaWatcher, type MeetingState } from "./watcher.js";
