/**
 * Typed errors. Every error meetrec raises on purpose is a {@link MeetrecError} with a stable
 * machine-readable `code`, an HTTP status for the API, and a message that says what to do.
 */

/** Stable error codes. Clients may switch on these; they never change meaning. */
export type ErrorCode =
  | "bad_request"
  | "validation_failed"
  | "origin_not_allowed"
  | "unauthorized"
  | "not_found"
  | "conflict"
  | "not_ready"
  | "config_invalid"
  | "join_failed"
  | "browser_failed"
  | "display_failed"
  | "audio_failed"
  | "encoder_failed"
  | "finalize_failed"
  | "store_failed"
  | "interrupted"
  | "rejoin_failed"
  | "disk_full"
  | "delivery_failed"
  | "internal";

/** An error with a stable `code`, an HTTP `status` and optional structured `details`. */
export class MeetrecError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details?: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, opts: { status?: number; details?: Record<string, unknown>; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "MeetrecError";
    this.code = code;
    this.status = opts.status ?? defaultStatus(code);
    this.details = opts.details;
  }
}

function defaultStatus(code: ErrorCode): number {
  switch (code) {
    case "bad_request": return 400;
    case "validation_failed": return 422;
    case "origin_not_allowed": return 422;
    case "unauthorized": return 401;
    case "not_found": return 404;
    case "conflict": return 409;
    case "not_ready": return 409;
    default: return 500;
  }
}

/** The message of any thrown value, for logs and stored reasons. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
