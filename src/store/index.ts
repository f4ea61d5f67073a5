/** store: recordings, their event timeline. */
export { RecordingStore, type Dialect, type Progress, type TransitionListener } from "./kysely-store.js";
export * from "./types.js";
