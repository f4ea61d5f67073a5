/**
 * S3 delivery: the final file is uploaded (multipart for large files, via @aws-sdk/lib-storage)
 * to `{prefix}` + the target's `key` template — by default `recordings/{id}/{file name}`, the
 * layout of DESIGN.md; a platform that looks for its own key (La Suite Meet:
 * `recordings/{metadata.meetRecordingId}.{ext}`) names it there. Downloads use presigned GET
 * URLs (SigV4 query signing, at most 7 days). The `s3` file target.
 */
import { createReadStream } from "node:fs";
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { S3_KEY_PLACEHOLDER, type S3Target } from "../../config/index.js";
import { fileContentType, speakersDocument, trackFileName, trackNumber } from "../../media/index.js";
import { MeetrecError } from "../../util/errors.js";
import { s3Client } from "../../util/s3.js";
import { wants, type DeliveryInputProblem, type FileTarget } from "../registry.js";
import { isSafeSubdir } from "./spool.js";

/** The metadata keys a key template takes values from (`{metadata.NAME}` → `NAME`), in order. */
export function s3KeyMetadata(t: Pick<S3Target, "key">): string[] {
  return [...t.key.matchAll(S3_KEY_PLACEHOLDER)].map((m) => m[1]).filter((p) => p.startsWith("metadata.")).map((p) => p.slice("metadata.".length));
}

/**
 * What a recording's metadata lacks for the key template: each `{metadata.NAME}` must be a plain
 * name (letters, digits, `. _ -`, not starting with a dot, at most 128 — the spool's rule), so
 * the key stays inside the prefix. Empty when all is well.
 */
export function s3KeyProblems(t: Pick<S3Target, "key">, metadata: Record<string, unknown>): DeliveryInputProblem[] {
  return s3KeyMetadata(t).filter((k) => !isSafeSubdir(metadata[k])).map((k) => ({
    field: `metadata.${k}`,
    message: `metadata.${k} must name the S3 object (letters, digits, . _ -, not starting with a dot, at most 128), got ${metadata[k] === undefined ? "nothing" : JSON.stringify(metadata[k])}`,
  }));
}

/**
 * Object key of a recording's final file: `prefix` + `key` with `{id}`, `{file}` (the file's
 * name), `{ext}` (its extension) and `{metadata.NAME}` filled in.
 * @throws MeetrecError `validation_failed` naming `metadata.{NAME}` when a metadata value is
 * missing or not a plain name ({@link s3KeyProblems}).
 */
export function s3Key(t: Pick<S3Target, "prefix" | "key">, rec: { id: string; metadata: Record<string, unknown> }, fileName: string): string {
  const problems = s3KeyProblems(t, rec.metadata);
  if (problems.length) throw new MeetrecError("validation_failed", problems.map((p) => p.message).join("; "), { details: { field: problems[0].field } });
  const ext = fileName.slice(fileName.lastIndexOf(".") + 1);
  return t.prefix + t.key.replace(S3_KEY_PLACEHOLDER, (_m, p: string) =>
    p === "id" ? rec.id : p === "file" ? fileName : p === "ext" ? ext : String(rec.metadata[p.slice("metadata.".length)]));
}

/**
 * Uploads `file` (streamed, 8 MiB parts, 2 at a time) as `key` with its media type
 * ({@link fileContentType}) and returns its location.
 * @throws the SDK's error (network, credentials, bucket) — the delivery retries it.
 */
export async function uploadToS3(t: S3Target, key: string, file: string, fileName: string): Promise<{ bucket: string; key: string }> {
  await new Upload({
    client: s3Client(t),
    params: { Bucket: t.bucket, Key: key, Body: createReadStream(file), ContentType: fileContentType(fileName) },
    partSize: 8 * 1024 * 1024,
    queueSize: 2,
  }).done();
  return { bucket: t.bucket, key };
}

/** A presigned GET URL for the object, valid `t.presignSeconds`. */
export function presignedUrl(t: S3Target, loc: { bucket: string; key: string }, downloadName?: string): Promise<string> {
  return getSignedUrl(s3Client(t), new GetObjectCommand({
    Bucket: loc.bucket, Key: loc.key,
    ...(downloadName ? { ResponseContentDisposition: `attachment; filename="${downloadName.replace(/"/g, "")}"` } : {}),
  }), { expiresIn: t.presignSeconds });
}

/** Deletes the object, its speakers sidecar and its tracks (named by `file.tracks`), if any (recording deleted). */
export async function deleteFromS3(t: S3Target, loc: { bucket: string; key: string }, file?: { name: string; tracks?: { name: string }[] }): Promise<void> {
  await s3Client(t).send(new DeleteObjectCommand({ Bucket: loc.bucket, Key: loc.key }));
  await s3Client(t).send(new DeleteObjectCommand({ Bucket: loc.bucket, Key: `${loc.key}${SPEAKERS_SUFFIX}` }));
  for (const tr of file?.tracks ?? []) await s3Client(t).send(new DeleteObjectCommand({ Bucket: loc.bucket, Key: trackKey(loc.key, tr.name) }));
}

/** The key of a per-participant track beside the file's key: the key + `.track-{n}.ogg` (from the track's name `{file}.track-{n}.ogg`). */
export function trackKey(fileKey: string, trackName: string): string {
  return trackFileName(fileKey, trackNumber(trackName) ?? 0);
}

/** The speakers sidecar's key: the file's key with this appended (media/speakers.ts). */
const SPEAKERS_SUFFIX = ".speakers.json";

/**
 * The `s3` target: the file is uploaded to the backend's bucket ({@link uploadToS3}, key
 * {@link s3Key}; before it, when anyone was heard speaking, its speakers sidecar at the same key
 * plus `.speakers.json`, and its per-participant tracks at the key plus `.track-{n}.ogg`) unless the recording chose targets without `s3`; its location is stored with
 * the file (`file.s3`), from which the API links to it with a presigned URL. The metadata the
 * key template names is checked at `POST`/`PATCH`.
 */
export const s3Target: FileTarget = {
  name: "s3",
  kind: "file",
  plan: (rec, backend) => (backend.delivery.s3 && wants(rec, "s3") ? ["s3"] : []),
  inputProblems(rec, backend) {
    const t = backend.delivery.s3;
    if (!t || !wants(rec, "s3")) return [];
    return s3KeyProblems(t, rec.metadata).map((p) => ({ ...p, message: `${p.message}: backend ${rec.backend} names its S3 objects by it (delivery.s3.key ${t.key})` }));
  },
  async deliver(_d, rec, ctx) {
    const t = ctx.backend.delivery.s3;
    if (!t || !rec.file) throw new Error(`backend ${rec.backend} has no S3 target any more, or the recording has no file`);
    const key = s3Key(t, rec, rec.file.name);
    // Who spoke when, first: an importer that waits for the file finds its sidecar already there.
    const speakers = speakersDocument(rec.file.name, await ctx.store.speakerIntervals(rec.id), rec.file.timeline);
    if (speakers) {
      await s3Client(t).send(new PutObjectCommand({ Bucket: t.bucket, Key: `${key}${SPEAKERS_SUFFIX}`, Body: JSON.stringify(speakers, null, 2), ContentType: "application/json" }));
    }
    // The per-participant tracks, before the file too (same reason): at the key + `.track-{n}.ogg`.
    for (const tr of rec.file.tracks?.length && ctx.trackPaths ? await ctx.trackPaths(rec) : []) await uploadToS3(t, trackKey(key, tr.name), tr.path, tr.name);
    const loc = await uploadToS3(t, key, await ctx.filePath(rec), rec.file.name);
    await ctx.store.mergeFile(rec.id, { s3: loc });
    return `uploaded to s3://${loc.bucket}/${loc.key}`;
  },
};
