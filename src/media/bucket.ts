/**
 * The segment bucket of one recording (S3 API): `{prefix}recordings/{id}/` holds
 * `p{n}/init.mp4` and `p{n}/{seq:06}.m4s` — the same layout as the local store, so the same
 * relative paths name a file in both — and the manifest.
 *
 * The manifest is `manifest.json` when one machine writes it (embedded mode). In cluster mode
 * each lease holder writes its own, `manifests/{epoch:010}.json`, and readers take the highest
 * epoch: a fenced holder that wakes from a freeze can then never replace a newer holder's
 * manifest with its older one (S3 has no compare-and-swap that every store offers).
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { readFile } from "node:fs/promises";
import { Upload } from "@aws-sdk/lib-storage";
import type { Readable } from "node:stream";
import { DeleteObjectCommand, DeleteObjectsCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from "@aws-sdk/client-s3";
import type { SegmentBucket } from "../config/index.js";
import { MeetrecError } from "../util/errors.js";
import { s3Client } from "../util/s3.js";
import type { Manifest } from "./manifest.js";
import { MANIFEST, bucketKey, bucketRecordingsPrefix, epochManifest, fileContentType, isManifestPath, isPeriodPath } from "./layout.js";

/** Ids of the recordings that have a manifest in the bucket (`{prefix}recordings/{id}/manifest.json` or `…/manifests/{epoch}.json`). */
export async function recordingsInBucket(cfg: SegmentBucket): Promise<string[]> {
  const prefix = bucketRecordingsPrefix(cfg);
  const ids = new Set<string>();
  let token: string | undefined;
  do {
    const page = await s3Client(cfg).send(new ListObjectsV2Command({ Bucket: cfg.bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) {
      const m = /^([^/]+)\/(.+)$/.exec(o.Key!.slice(prefix.length));
      if (m && isManifestPath(m[2])) ids.add(m[1]);
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return [...ids];
}

/** See module doc. Every method throws the SDK's error (network, credentials, missing bucket) unless it says otherwise. */
export class RecordingBucket {
  /**
   * @param epoch the writer's lease epoch (cluster workers); its manifest goes to
   *   `manifests/{epoch:010}.json` instead of `manifest.json`. Readers need none.
   */
  constructor(readonly cfg: SegmentBucket, readonly recordingId: string, readonly epoch?: number) {}

  /** Object key of `rel` (a path relative to the recording directory). */
  key(rel: string): string {
    return bucketKey(this.cfg, this.recordingId, rel);
  }

  private get client() {
    return s3Client(this.cfg);
  }

  /** Uploads the local file `path` as `rel`, with its MD5 checked by the store (RFC 1864 Content-MD5). */
  async putFile(rel: string, path: string, contentType = "video/iso.segment"): Promise<void> {
    const body = await readFile(path);
    await this.client.send(new PutObjectCommand({
      Bucket: this.cfg.bucket, Key: this.key(rel), Body: body, ContentType: contentType,
      ContentMD5: createHash("md5").update(body).digest("base64"),
    }));
  }

  /**
   * Uploads the final file (streamed, multipart in 8 MiB parts) as `{name}` beside the segments.
   * Returns where it is. Retried 5 times with backoff before it throws.
   */
  async putFinal(name: string, path: string): Promise<{ bucket: string; key: string }> {
    const key = this.key(name);
    for (let attempt = 1; ; attempt++) {
      try {
        await new Upload({
          client: this.client,
          params: { Bucket: this.cfg.bucket, Key: key, Body: createReadStream(path), ContentType: fileContentType(name) },
          partSize: 8 * 1024 * 1024, queueSize: 2,
        }).done();
        return { bucket: this.cfg.bucket, key };
      } catch (err) {
        if (attempt >= 5) throw err;
        await new Promise((r) => setTimeout(r, 1000 * attempt));
      }
    }
  }

  /**
   * A stream of the final file `name`, optionally a byte range (`bytes=a-b`, RFC 9110 §14.1.2).
   * @throws MeetrecError `range_not_satisfiable` when the range starts beyond the end of the file.
   */
  async openFinal(name: string, range?: string): Promise<{ body: Readable; length?: number; contentRange?: string }> {
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.cfg.bucket, Key: this.key(name), Range: range }));
      return { body: r.Body as Readable, length: r.ContentLength, contentRange: r.ContentRange };
    } catch (err) {
      if ((err as { name?: string }).name === "InvalidRange") {
        throw new MeetrecError("range_not_satisfiable", "The Range header asks for bytes beyond the end of the file; Content-Range gives its size", { cause: err });
      }
      throw err;
    }
  }

  /** Deletes the object `key` (the stored final file). */
  async deleteFinal(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.cfg.bucket, Key: key }));
  }

  /** Writes this writer's manifest (see module doc for the key). */
  async putManifest(m: Manifest): Promise<void> {
    const rel = this.epoch === undefined ? MANIFEST : epochManifest(this.epoch);
    await this.client.send(new PutObjectCommand({
      Bucket: this.cfg.bucket, Key: this.key(rel), Body: JSON.stringify(m, null, 1), ContentType: "application/json",
    }));
  }

  /**
   * The recording's current manifest: the highest lease epoch's `manifests/{epoch}.json`, else
   * `manifest.json`; undefined when there is none.
   */
  async getManifest(): Promise<Manifest | undefined> {
    const epochs = await this.client.send(new ListObjectsV2Command({ Bucket: this.cfg.bucket, Prefix: this.key("manifests/") }));
    // Keys list in ascending order; a recording has a few epochs, far below one page (1000 keys).
    const base = this.key("").length;
    const newest = (epochs.Contents ?? []).map((o) => o.Key!).filter((k) => isManifestPath(k.slice(base)) && k.slice(base) !== MANIFEST).sort().at(-1);
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.cfg.bucket, Key: newest ?? this.key(MANIFEST) }));
      return JSON.parse(await r.Body!.transformToString()) as Manifest;
    } catch (err) {
      if ((err as { name?: string }).name === "NoSuchKey") return undefined;
      throw err;
    }
  }

  /** A stream of the object `rel`. @throws MeetrecError `store_failed` when it is missing. */
  async open(rel: string): Promise<Readable> {
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.cfg.bucket, Key: this.key(rel) }));
      return r.Body as Readable;
    } catch (err) {
      if ((err as { name?: string }).name === "NoSuchKey") throw new MeetrecError("store_failed", `Segment ${rel} of ${this.recordingId} is missing from bucket ${this.cfg.bucket}`, { cause: err });
      throw err;
    }
  }

  /** Deletes the segments and the manifests (not other objects under the prefix, such as a delivered file). Returns how many. */
  async deleteSegments(): Promise<number> {
    const prefix = this.key("");
    let token: string | undefined;
    let n = 0;
    do {
      const page = await this.client.send(new ListObjectsV2Command({ Bucket: this.cfg.bucket, Prefix: prefix, ContinuationToken: token }));
      const keys = (page.Contents ?? []).map((o) => o.Key!).filter((k) => isPeriodPath(k.slice(prefix.length)) || isManifestPath(k.slice(prefix.length)));
      if (keys.length) {
        await this.client.send(new DeleteObjectsCommand({ Bucket: this.cfg.bucket, Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: true } }));
        n += keys.length;
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return n;
  }
}
