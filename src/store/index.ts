/** store: recordings, their event timeline (one catalogue of event types: timeline.ts), deliveries. */
export { RecordingStore, type Dialect, type Progress, type TransitionListener } from "./kysely-store.js";
export * from "./types.js";
export { TIMELINE_EVENT_TYPES, type TimelineEvents, type TimelineEventType, type TimelineEvent, type EventOf, type SessionPids } from "./timeline.js";
