/**
 * S3 delivery: the final file is uploaded (multipart for large files, via @aws-sdk/lib-storage)
 * to `{prefix}recordings/{id}/{file name}`, the layout of DESIGN.md; downloads use presigned GET
 * URLs (SigV4 query signing, at most 7 days). The `s3` file target.
 */
import { createReadStream } from "node:fs";
import { DeleteObjectCommand, GetObjectCommand } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import type { S3Target } from "../../config/index.js";
import { s3Client } from "../../util/s3.js";
import { wants, type FileTarget } from "../registry.js";

/** Object key of a recording's final file. */
export function s3Key(t: S3Target, id: string, fileName: string): string {
  return `${t.prefix}recordings/${id}/${fileName}`;
}

/**
 * Uploads `file` (streamed, 8 MiB parts, 2 at a time) and returns its location.
 * @throws the SDK's error (network, credentials, bucket) — the delivery retries it.
 */
export async function uploadToS3(t: S3Target, id: string, file: string, fileName: string, contentType: string): Promise<{ bucket: string; key: string }> {
  const key = s3Key(t, id, fileName);
  await new Upload({
    client: s3Client(t),
    params: { Bucket: t.bucket, Key: key, Body: createReadStream(file), ContentType: contentType },
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

/** Deletes the object (recording deleted). */
export async function deleteFromS3(t: S3Target, loc: { bucket: string; key: string }): Promise<void> {
  await s3Client(t).send(new DeleteObjectCommand({ Bucket: loc.bucket, Key: loc.key }));
}

/**
 * The `s3` target: the file is uploaded to the backend's bucket ({@link uploadToS3}) unless the
 * recording chose targets without `s3`; its location is stored with the file (`file.s3`), from
 * which the API links to it with a presigned URL.
 */
export const s3Target: FileTarget = {
  name: "s3",
  kind: "file",
  plan: (rec, backend) => (backend.delivery.s3 && wants(rec, "s3") ? ["s3"] : []),
  async deliver(_d, rec, ctx) {
    const t = ctx.backend.delivery.s3;
    if (!t || !rec.file) throw new Error(`backend ${rec.backend} has no S3 target any more, or the recording has no file`);
    const loc = await uploadToS3(t, rec.id, await ctx.filePath(rec), rec.file.name, rec.options.mode === "audio" ? "audio/mp4" : "video/mp4");
    await ctx.store.mergeFile(rec.id, { s3: loc });
    return `uploaded to s3://${loc.bucket}/${loc.key}`;
  },
};
