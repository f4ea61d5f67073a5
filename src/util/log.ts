/**
 * Structured logging (pino). Child loggers carry `recordingId` so every line of a recording
 * can be found; known secret-bearing keys are redacted.
 */
import { pino, destination, multistream, type Level, type Logger } from "pino";
import { redactUrl } from "./redact.js";

export type { Logger };

/** Keys whose values never reach a log line. */
export const REDACT_PATHS = [
  "apiKey", "*.apiKey", "secret", "*.secret", "password", "*.password", "authorization",
  "req.headers.authorization", "headers.authorization", "*.headers.authorization",
  "backends.*.apiKey", "config.backends.*.apiKey",
];

/**
 * Creates the root logger. `level` is a pino level (`info` default, `MEETREC_LOG_LEVEL` wins).
 * Logs go to stderr so that `--json` output on stdout stays machine-readable; `copyTo` appends
 * every line to that file too (created with its directory).
 *
 * Written synchronously: a line is out before the next statement (a crash loses none), and a
 * reader that went away (`meetrec serve | head`) makes pino drop the lines at the first EPIPE.
 * pino's asynchronous destination flushes at exit with sonic-boom's `flushSync`, which retries a
 * broken pipe forever (sonic-boom 4.2: only EAGAIN/EBUSY are meant to be retried): `serve`
 * then hung on SIGTERM.
 */
export function createLogger(level = process.env.MEETREC_LOG_LEVEL ?? "info", opts: { copyTo?: string } = {}): Logger {
  const options = { level, base: { service: "meetrec" }, redact: { paths: REDACT_PATHS, censor: "[redacted]" } };
  const stderr = destination({ dest: 2, sync: true });
  if (!opts.copyTo) return pino(options, stderr);
  const l = level as Level;
  return pino(options, multistream([{ level: l, stream: stderr }, { level: l, stream: destination({ dest: opts.copyTo, append: true, mkdir: true, sync: true }) }]));
}

/** What of an HTTP request a log line shows (Fastify's `req` fields, the query cut). */
export interface LoggedRequest {
  method: string;
  /** Path with the query and fragment shown as `?…` / `#…` (see {@link redactUrl}). */
  url: string;
  host?: string;
  remoteAddress?: string;
  remotePort?: number;
}

/**
 * pino serializer of the `req` key (Fastify's request, or Node's): the fields Fastify logs by
 * default, with the URL's query redacted — a query can carry a key or token (`?key=…`).
 */
export function requestSerializer(req: { method?: string; url?: string; host?: string; ip?: string; socket?: { remotePort?: number } }): LoggedRequest {
  return { method: req.method ?? "", url: redactUrl(req.url ?? ""), host: req.host, remoteAddress: req.ip, remotePort: req.socket?.remotePort };
}

/**
 * The logger to give Fastify (`loggerInstance`): `log` with {@link requestSerializer} for
 * `req`, which overrides Fastify's own (that one logs the full URL, query included).
 */
export function httpLogger(log: Logger): Logger {
  return log.child({}, { serializers: { req: requestSerializer } });
}
