/** store: recordings, their event timeline. */
export { RecordingStore, type Progress } from "./sqlite.js";
export * from "./types.js";
