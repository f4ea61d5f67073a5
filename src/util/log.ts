/**
 * Structured logging (pino). Child loggers carry `recordingId` so every line of a recording
 * can be found; known secret-bearing keys are redacted.
 */
import { pino, destination, type Logger } from "pino";

export type { Logger };

/** Keys whose values never reach a log line. */
export const REDACT_PATHS = [
  "apiKey", "*.apiKey", "secret", "*.secret", "password", "*.password", "authorization",
  "req.headers.authorization", "headers.authorization", "*.headers.authorization",
  "backends.*.apiKey", "config.backends.*.apiKey",
];

/**
 * Creates the root logger. `level` is a pino level (`info` default, `MEETREC_LOG_LEVEL` wins).
 * Logs go to stderr so that `--json` output on stdout stays machine-readable.
 */
export function createLogger(level = process.env.MEETREC_LOG_LEVEL ?? "info"): Logger {
  return pino({ level, base: { service: "meetrec" }, redact: { paths: REDACT_PATHS, censor: "[redacted]" } }, destination(2));
}
