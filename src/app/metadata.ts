/**
 * Rules for a recording's metadata beyond its shape (which `RecordingRequest` checks).
 */
import { MeetrecError } from "../util/errors.js";

/**
 * Metadata keys only meetrec itself sets: `talk` holds the Talk conversation a recording
 * belongs to (its callbacks and upload are sent there). A request naming one is refused.
 */
export const RESERVED_METADATA_KEYS: readonly string[] = ["talk"];

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
