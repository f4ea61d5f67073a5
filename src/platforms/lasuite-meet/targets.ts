/**
 * La Suite Meet's delivery target (shared/protocols/lasuite-meet.md §8.4): `lasuite-meet:storage-event`,
 * the storage event that tells Meet its recording's file is in the bucket, posted once the
 * `s3` target has uploaded it under Meet's key (`delivery.s3.key`). For backends with
 * `lasuiteMeet.storageEvent`.
 */
import type { BackendConfig } from "../../config/index.js";
import { DeliveryRefused, s3KeyMetadata, wants, type DeliveryInputProblem, type NotifyTarget, type RequestedRecording } from "../../delivery/index.js";
import { fileContentType } from "../../media/index.js";
import { MEET_CONTENT_TYPES, MEET_UUID, postStorageEvent, storageEvent } from "./storage-event.js";

/** The target's name as deliveries carry it. */
export const STORAGE_EVENT_TARGET = "lasuite-meet:storage-event";

/**
 * What a recording of a Meet backend must carry so that Meet will take its file: each metadata
 * value the S3 key is made of must be a UUID (Meet's parser reads the recording id from the
 * key's file name, `core/enums.py` `UUID_REGEX`), and an audio-only recording must be Opus
 * (Ogg: Meet takes `audio/ogg` and `video/mp4` only). Empty when all is well.
 */
export function meetInputProblems(rec: RequestedRecording, backend: BackendConfig): DeliveryInputProblem[] {
  const s3 = backend.delivery.s3;
  if (!backend.lasuiteMeet?.storageEvent || !s3 || !wants(rec, "s3")) return [];
  const problems: DeliveryInputProblem[] = s3KeyMetadata(s3)
    .filter((k) => typeof rec.metadata[k] !== "string" || !MEET_UUID.test(rec.metadata[k] as string))
    .map((k) => ({ field: `metadata.${k}`, message: `metadata.${k} must be La Suite Meet's recording id (a UUID), got ${rec.metadata[k] === undefined ? "nothing" : JSON.stringify(rec.metadata[k])}` }));
  if (rec.options.mode === "audio" && rec.options.audioFormat !== "opus") {
    problems.push({ field: "audioFormat", message: `La Suite Meet takes audio-only recordings as Ogg/Opus only: ask for audioFormat opus (or set backends.${rec.backend}.audioFormat: opus)` });
  }
  return problems;
}

/**
 * `lasuite-meet:storage-event`: once the file is ready (the recording `completed` after its
 * deliveries, or `failed` with a file), Meet's storage hook gets the event for the object the
 * `s3` target wrote ({@link storageEvent}, {@link postStorageEvent}). An attempt made before the
 * upload is done waits for it (retried); when the upload was given up, there is nothing to tell.
 */
export const meetStorageEventTarget: NotifyTarget = {
  name: STORAGE_EVENT_TARGET,
  kind: "notify",
  plan(rec, backend, change) {
    if (!backend.lasuiteMeet?.storageEvent || !backend.delivery.s3 || !wants(rec, "s3") || !rec.file) return [];
    const ready = rec.status === "completed" || (rec.status === "failed" && change.from !== "delivering");
    return ready ? [{ target: STORAGE_EVENT_TARGET }] : [];
  },
  inputProblems: meetInputProblems,
  async deliver(_d, rec, ctx) {
    const hook = ctx.backend.lasuiteMeet?.storageEvent;
    const s3 = ctx.backend.delivery.s3;
    if (!hook || !s3) throw new Error(`backend ${rec.backend} has no lasuiteMeet.storageEvent or delivery.s3 any more`);
    const loc = rec.file?.s3;
    if (!rec.file || !loc) {
      const upload = (await ctx.store.deliveries(rec.id)).find((x) => x.target === "s3");
      if (!upload || upload.status === "failed") throw new DeliveryRefused("the file is not in the bucket (its S3 delivery was given up or never made): nothing to tell Meet; redeliver once the upload works");
      throw new Error("waiting for the S3 upload to finish");
    }
    const contentType = fileContentType(rec.file.name);
    if (!(MEET_CONTENT_TYPES as readonly string[]).includes(contentType)) {
      throw new DeliveryRefused(`La Suite Meet does not take ${contentType} files (only ${MEET_CONTENT_TYPES.join(", ")}): record audio as opus`);
    }
    const event = storageEvent({ bucket: loc.bucket, key: loc.key, contentType, bytes: rec.file.bytes, region: s3.region, at: new Date() });
    return postStorageEvent(hook.url, hook.token, event, ctx.config.delivery.attemptTimeoutMs, ctx.egress);
  },
};
