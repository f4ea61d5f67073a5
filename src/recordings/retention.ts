/**
 * Retention: the media of ended recordings older than their backend's `retentionDays` is
 * removed (local directory, and the S3 delivery's object); the row stays with a
 * `retention_purged` event, so the history remains.
 */
import type { Config } from "../config/index.js";
import { deleteFromS3 } from "../delivery/index.js";
import type { RecordingFiles } from "../media/index.js";
import type { RecordingStore } from "../store/index.js";
import type { Logger } from "../util/log.js";

/** See module doc. */
export class Retention {
  constructor(private readonly d: { config: Config; store: RecordingStore; files: RecordingFiles; log: Logger }) {}

  /**
   * Removes the media of every ended recording older than its backend's `retentionDays`, as
   * of `now`; unfinished deliveries are given up. Returns the ids purged. A recording whose
   * media cannot be removed is logged and tried again at the next sweep. Never throws.
   */
  async sweep(now = new Date()): Promise<string[]> {
    const { config, store, files, log } = this.d;
    const purged: string[] = [];
    for (const [backend, b] of Object.entries(config.backends)) {
      if (!b.retentionDays) continue;
      for (const rec of await store.expired(backend, new Date(now.getTime() - b.retentionDays * 86400_000))) {
        try {
          if (b.delivery.s3 && rec.file?.s3) await deleteFromS3(b.delivery.s3, rec.file.s3, rec.file);
          await files.removeLocal(rec);
          const why = `Media removed by retention (${b.retentionDays} days after the end)`;
          await store.dropFile(rec.id, why);
          await store.addEvent(rec.id, {
            type: "retention_purged", message: why,
            data: { file: rec.file?.name, bucket: rec.file?.s3 ? `s3://${rec.file.s3.bucket}/${rec.file.s3.key}` : null },
          });
          log.info({ recordingId: rec.id, backend, retentionDays: b.retentionDays }, "retention: media removed");
          purged.push(rec.id);
        } catch (err) {
          log.error({ recordingId: rec.id, err: (err as Error).message }, "retention: could not remove media; will try again at the next sweep");
        }
      }
    }
    return purged;
  }
}
