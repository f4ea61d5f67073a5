/**
 * The storage event La Suite Meet reads to learn that a recording's file is in its bucket
 * (shared/protocols/lasuite-meet.md §5, §8.4; suitenumerique/meet
 * `src/backend/core/recording/event/parsers.py` `MinioParser`, `core/api/viewsets.py`
 * `on_storage_event_received`, `core/recording/event/authentication.py`). It has the shape of
 * MinIO's bucket notification (`s3:ObjectCreated:Put`) with the object key URL-encoded as MinIO
 * sends it, and goes to Meet's storage hook with `Authorization: Bearer <token>`.
 */
import { egressDispatcher, type EgressPolicy } from "../../egress/index.js";
import { DeliveryRefused } from "../../delivery/index.js";

/** What Meet's parser allows (`BaseS3Parser._allowed_filetypes`): anything else is "ignored". */
export const MEET_CONTENT_TYPES = ["audio/ogg", "video/mp4"] as const;

/** Meet's `UUID_REGEX` (`core/enums.py`): the recording id in the key's file name. */
export const MEET_UUID = /^[a-fA-F0-9]{8}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{12}$/;

/**
 * An object key as MinIO puts it in its notifications: Go's `url.QueryEscape` (every byte but
 * `A–Z a–z 0–9 - _ . ~` percent-encoded, space as `+`), so `recordings/{uuid}.mp4` becomes
 * `recordings%2F{uuid}.mp4` — the only form Meet's `MinioParser` matches (a raw `/` is "ignored").
 */
export function minioEscapeKey(key: string): string {
  return encodeURIComponent(key).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`).replace(/%20/g, "+");
}

/** One object that was written: where, what type, how many bytes, when. */
export interface StoredObject {
  bucket: string;
  /** The object key as stored (not escaped). */
  key: string;
  contentType: string;
  bytes: number;
  region: string;
  at: Date;
}

/**
 * The event body: `{EventName, Key: "{bucket}/{escaped key}", Records: [{… s3: {bucket: {name},
 * object: {key, size, contentType}}}]}`. Meet reads only `Records[0].s3.object.key`,
 * `.object.contentType` and `.bucket.name`; the other fields are MinIO's, for receivers that
 * read more.
 */
export function storageEvent(o: StoredObject): unknown {
  const key = minioEscapeKey(o.key);
  const eventName = "s3:ObjectCreated:Put";
  return {
    EventName: eventName,
    Key: `${o.bucket}/${key}`,
    Records: [{
      eventVersion: "2.0",
      eventSource: "meetrec:s3",
      awsRegion: o.region,
      eventTime: o.at.toISOString(),
      eventName,
      userIdentity: { principalId: "meetrec" },
      requestParameters: {},
      responseElements: {},
      s3: {
        s3SchemaVersion: "1.0",
        configurationId: "meetrec",
        bucket: { name: o.bucket, ownerIdentity: { principalId: "meetrec" }, arn: `arn:aws:s3:::${o.bucket}` },
        object: { key, size: o.bytes, contentType: o.contentType, userMetadata: { "content-type": o.contentType } },
      },
      source: { host: "", port: "", userAgent: "meetrec" },
    }],
  };
}

/**
 * POSTs `event` to Meet's storage hook and reads Meet's answer (viewsets.py
 * `on_storage_event_received`): 200 `{"message": "Event processed."}` → resolves with the
 * message. Redirects are not followed; the connection goes through `egress` (the URL is
 * configured, so any address is allowed).
 * @throws DeliveryRefused when Meet answers for good — 200 "Notification ignored." (the key or
 * type is not one Meet records: `delivery.s3.key` vs `RECORDING_OUTPUT_FOLDER`), or 403 (the
 * recording cannot be saved — already saved or failed in Meet — or the bucket or body is not
 * what Meet expects).
 * @throws Error for what may pass (retried): no connection, 401 (token), 404 (storage events
 * off in Meet, `RECORDING_STORAGE_EVENT_ENABLE`, or a recording Meet does not know), 5xx.
 */
export async function postStorageEvent(url: string, token: string, event: unknown, timeoutMs: number, egress: EgressPolicy): Promise<string> {
  const origin = new URL(url).origin;
  let res: Response;
  try {
    res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}`, "user-agent": "meetrec-storage-event/0.1" },
      body: JSON.stringify(event),
      signal: AbortSignal.timeout(timeoutMs),
      redirect: "manual",
      dispatcher: egressDispatcher(egress, url, { named: true }),
    } as RequestInit);
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new Error(`${origin} unreachable: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
  }
  const text = (await res.text().catch(() => "")).slice(0, 300);
  const said = meetMessage(text);
  if (res.status === 200 && /ignored/i.test(said)) {
    throw new DeliveryRefused(`Meet ignored the storage event (${said}): the object key or type is not one it records; make delivery.s3.key end in {RECORDING_OUTPUT_FOLDER}/{metadata.meetRecordingId}.{ext} and transcripts audioFormat opus`);
  }
  if (res.status >= 200 && res.status <= 299) return `Meet answered ${res.status}${said ? `: ${said}` : ""}`;
  if (res.status === 403) throw new DeliveryRefused(`Meet refused the storage event (403${said ? `: ${said}` : ""})`);
  const hint = res.status === 401 ? " (check lasuiteMeet.storageEvent.token against Meet's RECORDING_STORAGE_EVENT_TOKEN)"
    : res.status === 404 ? " (is RECORDING_STORAGE_EVENT_ENABLE on in Meet, and does Meet know this recording?)" : "";
  throw new Error(`${origin} answered ${res.status}${said ? `: ${said}` : ""}${hint}`);
}

/** Meet's answer as text: DRF's `{"message": …}` or `{"detail": …}`, else the start of the body. */
function meetMessage(text: string): string {
  try {
    const j = JSON.parse(text) as { message?: unknown; detail?: unknown };
    if (typeof j.message === "string") return j.message;
    if (typeof j.detail === "string") return j.detail;
  } catch { /* not JSON */ }
  return text.trim().slice(0, 200);
}
