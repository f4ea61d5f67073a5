/**
 * The recording as the API shows it.
 */
import { z } from "zod";
import type { Delivery, DeliveryAttempt } from "../store/index.js";

const Status = z.enum(["queued", "starting", "recording", "stopping", "finalizing", "delivering", "completed", "failed", "aborted"]);

export const EventView = z.object({
  at: z.string(),
  type: z.string(),
  status: Status.nullable(),
  reason: z.string().nullable(),
  message: z.string().nullable(),
  data: z.record(z.string(), z.unknown()).nullable(),
});

/** Attempts listed per delivery in the recording view (the last ones; `attemptCount` counts all). */
export const ATTEMPTS_SHOWN = 20;

export const DeliveryView = z.object({
  target: z.string().describe("webhook:{name} | spool | s3 | email | talk:upload | talk:callback"),
  kind: z.enum(["file", "notify"]),
  event: z.string().nullable().describe("webhook event type, for notifications"),
  status: z.enum(["pending", "succeeded", "failed"]).describe("`failed`: given up after `delivery.giveUpAfterSeconds` of failures (or the media was removed); `redeliver` retries it"),
  attempts: z.array(z.object({ at: z.string(), outcome: z.enum(["ok", "error"]), message: z.string().nullable(), nextAttemptAt: z.string().nullable() }))
    .describe(`The last ${ATTEMPTS_SHOWN} attempts, oldest first (attemptCount counts all of them)`),
  attemptCount: z.number().int().describe("Attempts made in all"),
  nextAttemptAt: z.string().nullable(),
  redeliverPending: z.boolean().describe("A redeliver made it due and it has not been attempted yet (another redeliver is refused until then)"),
});

export const RecordingView = z.object({
  id: z.string(),
  status: Status,
  backend: z.string(),
  url: z.string(),
  mode: z.enum(["video", "audio"]),
  browser: z.enum(["chromium", "firefox"]),
  video: z.object({ width: z.number(), height: z.number(), fps: z.number(), bitrateKbps: z.number() }),
  maxDurationSeconds: z.number(),
  metadata: z.record(z.string(), z.unknown()),
  endReason: z.string().nullable().describe("stopped | limit_reached | meeting_ended | disk_full | failed | deleted"),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
  createdAt: z.string(),
  startedAt: z.string().nullable(),
  endedAt: z.string().nullable(),
  updatedAt: z.string(),
  capturedSeconds: z.number().describe("Media durably stored so far, s"),
  segmentCount: z.number(),
  bytes: z.number().describe("Bytes of stored segments"),
  periods: z.number().describe("Encoder runs so far; more than 1 after a restart"),
  file: z.object({
    name: z.string(), bytes: z.number(), durationSeconds: z.number(), streams: z.array(z.string()), url: z.string(),
  }).nullable(),
  worker: z.string().nullable().describe("Cluster mode: the worker recording it now (null while queued, after it ends, and in embedded mode)"),
  events: z.array(EventView).optional(),
  deliveries: z.array(DeliveryView).optional().describe(`Where the file and the notifications went, with the last ${ATTEMPTS_SHOWN} attempts of each and a count of all`),
});
export { toView, type RecordingViewData } from "../app/view.js";


/**
 * Deliveries with their attempts, as the API shows them: the last {@link ATTEMPTS_SHOWN}
 * attempts of each (of `attempts`, which may hold fewer), and the count of all.
 */
export function toDeliveryViews(deliveries: Delivery[], attempts: DeliveryAttempt[]): z.infer<typeof DeliveryView>[] {
  return deliveries.map((d) => ({
    target: d.target,
    kind: d.kind,
    event: d.kind === "notify" ? ((d.payload as { type?: string } | null)?.type ?? null) : null,
    status: d.status,
    attempts: attempts.filter((a) => a.deliveryId === d.id).slice(-ATTEMPTS_SHOWN).map((a) => ({ at: a.at, outcome: a.outcome, message: a.message, nextAttemptAt: a.nextAttemptAt })),
    attemptCount: d.attempts,
    nextAttemptAt: d.status === "pending" ? d.nextAttemptAt : null,
    redeliverPending: d.status === "pending" && d.redeliverAt !== null,
  }));
}
