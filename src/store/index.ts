/** store: recordings, their event timeline. */
export { RecordingStore, type Progress, type TransitionListener } from "./sqlite.js";
export * from "./types.js";
