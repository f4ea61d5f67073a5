/**
 * Typed errors. Every error meetrec raises on purpose is a {@link MeetrecError} with a stable
 * machine-readable `code`, an HTTP status for the API, and a message that says what to do.
 */

/** Stable error codes. Clients may switch on these; they never change meaning. */
export type ErrorCode =
  | "bad_request"
  | "validation_failed"
  | "origin_not_allowed"
  | "egress_refused"
  | "unauthorized"
  | "not_found"
  | "method_not_allowed"
  | "unsupported_media_type"
  | "range_not_satisfiable"
  | "uri_too_long"
  | "headers_too_large"
  | "conflict"
  | "not_ready"
  | "config_invalid"
  | "join_failed"
  | "browser_failed"
  | "display_failed"
  | "audio_failed"
  | "encoder_failed"
  | "finalize_failed"
  | "no_media"
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
    case "egress_refused": return 422;
    case "unauthorized": return 401;
    case "not_found": return 404;
    case "method_not_allowed": return 405;
    case "unsupported_media_type": return 415;
    case "range_not_satisfiable": return 416;
    case "uri_too_long": return 414;
    case "headers_too_large": return 431;
    case "conflict": return 409;
    case "not_ready": return 409;
    default: return 500;
  }
}

/** The message of any thrown value, for logs and stored reasons. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The message of any thrown value for API clients and stored reasons: like {@link errorMessage},
 * but a Node system error (`fs`, `child_process`: it has a `code` and a `syscall`, and its message
 * ends with the path) becomes `ENOSPC: no space left on device (write)`, without the path.
 * Log the original error where the path helps the operator.
 */
export function publicErrorMessage(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e instanceof Error && typeof e.code === "string" && typeof e.syscall === "string") {
    const what = /^[A-Z0-9_]+: ([^,]+)/.exec(e.message)?.[1];
    return `${e.code}${what ? `: ${what}` : ""} (${e.syscall})`;
  }
  return errorMessage(err);
}

/**
 * `text` with the local `paths` (absolute directories or files) cut out, for messages that reach
 * API clients: what lies under one of them stays as a relative path (`{dir}/p1/000001.m4s` →
 * `p1/000001.m4s`), a path itself becomes `…`. Longer paths are cut first.
 */
export function withoutPaths(text: string, paths: (string | undefined)[]): string {
  const roots = [...new Set(paths.filter((p): p is string => !!p && p !== "/").map((p) => p.replace(/\/+$/, "")))].sort((a, b) => b.length - a.length);
  let out = text;
  for (const root of roots) {
    const escaped = root.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    // `/data/x` is cut from `/data/x`, `/data/x/…` and `'/data/x'`, not from `/data/xy` or `/mnt/data/x`.
    out = out.replace(new RegExp(`(?<![\\w./-])${escaped}/`, "g"), "").replace(new RegExp(`(?<![\\w./-])${escaped}(?![\\w.-])`, "g"), "…");
  }
  return out;
}
