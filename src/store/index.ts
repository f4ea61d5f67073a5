/** store: recordings, their event timeline (one catalogue of event types: timeline.ts), deliveries. */
export { RecordingStore } from "./kysely-store.js";
export * from "./types.js";
export { TIMELINE_EVENT_TYPES, type TimelineEvent, type EventOf, type SessionPids } from "./timeline.js";
