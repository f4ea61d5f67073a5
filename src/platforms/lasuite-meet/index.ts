/** La Suite Meet: the storage event that tells Meet a recording's file is in its bucket, and its delivery target. */
export { minioEscapeKey, storageEvent, postStorageEvent, MEET_CONTENT_TYPES, MEET_UUID, type StoredObject } from "./storage-event.js";
export { meetStorageEventTarget, meetInputProblems, STORAGE_EVENT_TARGET } from "./targets.js";
