/**
 * Rules for a recording's metadata beyond its shape (which `RecordingRequest` checks), and
 * changing it after it was created (`PATCH /v1/recordings/{id}`): a way out for a delivery that
 * cannot succeed with the metadata it was given (a spool sub-directory, an owner's address),
 * followed by `redeliver`.
 */
import { z } from "zod";
import { TERMINAL, type Recording } from "../store/index.js";
import { MeetrecError } from "../util/errors.js";
import { RecordingRequest } from "./request.js";

/** Most metadata keys a recording may have (as at creation). */
export const MAX_METADATA_KEYS = 50;

/**
 * Metadata keys only meetrec itself sets: `talk` holds the Talk conversation a recording
 * belongs to (its callbacks and upload are sent there). A request naming one is refused.
 */
export const RESERVED_METADATA_KEYS: readonly string[] = ["talk"];

/** Body of `PATCH /v1/recordings/{id}`. Unknown fields are refused. */
export const MetadataPatchRequest = z.strictObject({
  metadata: RecordingRequest.shape.metadata.unwrap()
    .refine((m) => Object.keys(m).length > 0, "name at least one key")
    .describe("Keys to change, merged into the recording's metadata (JSON merge patch, RFC 7396): a value replaces the key's, `null` removes the key, keys not named stay. Values as at creation (string up to 2000 characters, number, boolean)."),
});
export type MetadataPatchRequest = z.infer<typeof MetadataPatchRequest>;

/**
 * Refuses metadata keys reserved for meetrec ({@link RESERVED_METADATA_KEYS}).
 * @throws MeetrecError `validation_failed` naming `metadata.{key}`.
 */
export function checkMetadataKeys(metadata: Record<string, unknown>): void {
  const reserved = Object.keys(metadata).filter((k) => RESERVED_METADATA_KEYS.includes(k));
  if (reserved.length > 0) {
    throw new MeetrecError("validation_failed", `metadata.${reserved[0]} is reserved for meetrec (it names the Talk conversation of recordings started by Nextcloud Talk); use another key`, { details: { field: `metadata.${reserved[0]}` } });
  }
}

/**
 * Whether a recording's metadata may still change: until its delivery has ended — not once it
 * is `completed` or `aborted`, nor `failed` without a file to deliver.
 * @throws MeetrecError `conflict` saying why not.
 */
export function checkMetadataEditable(rec: Pick<Recording, "id" | "status" | "file">): void {
  if (!TERMINAL.includes(rec.status) || (rec.status === "failed" && rec.file)) return;
  const why = rec.status === "failed" ? "failed and has no file to deliver" : `${rec.status}: its delivery has ended`;
  throw new MeetrecError("conflict", `Recording ${rec.id} is ${why}, so its metadata can no longer change`);
}
