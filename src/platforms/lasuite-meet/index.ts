/** La Suite Meet: the storage event that tells Meet a recording's file is in its bucket, and its delivery target. */
export { minioEscapeKey, storageEvent, postStorageEvent } from "./storage-event.js";
export { meetStorageEventTarget } from "./targets.js";
