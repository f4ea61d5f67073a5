/**
 * Errors as `application/problem+json` (RFC 9457): `type`, `title`, `status`, `detail`,
 * `instance`, plus the stable `code` and, for validation failures, `errors` (one per bad field).
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { hasZodFastifySchemaValidationErrors } from "fastify-type-provider-zod";
import { z } from "zod";
import { MeetrecError } from "../util/errors.js";

/** The problem document (RFC 9457 §3.1 members plus meetrec's extensions). */
export const Problem = z.object({
  type: z.string().describe("URI of the problem type: urn:meetrec:problem:{code}"),
  title: z.string(),
  status: z.number().int(),
  detail: z.string().describe("What went wrong and what to do"),
  instance: z.string().optional(),
  code: z.string().describe("Stable machine-readable code"),
  errors: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
});
export type Problem = z.infer<typeof Problem>;

const TITLES: Record<number, string> = {
  400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout", 409: "Conflict",
  413: "Content Too Large", 414: "URI Too Long", 415: "Unsupported Media Type", 416: "Range Not Satisfiable",
  422: "Unprocessable Content", 429: "Too Many Requests", 431: "Request Header Fields Too Large",
  500: "Internal Server Error", 503: "Service Unavailable",
};

/** Builds a problem document. */
export function problem(status: number, code: string, detail: string, instance?: string, errors?: Problem["errors"]): Problem {
  return { type: `urn:meetrec:problem:${code}`, title: TITLES[status] ?? "Error", status, detail, instance, code, ...(errors ? { errors } : {}) };
}

/** Sends `p` with `content-type: application/problem+json`. */
export function sendProblem(reply: FastifyReply, p: Problem): FastifyReply {
  return reply.code(p.status).type("application/problem+json").send(p);
}

/**
 * `p` as a complete HTTP/1.1 response (status line, headers, body; `Connection: close`), for
 * answers written on a raw socket where no Fastify reply exists (Fastify's `clientErrorHandler`).
 */
export function problemHttpMessage(p: Problem): string {
  const body = JSON.stringify(p);
  return [
    `HTTP/1.1 ${p.status} ${p.title}`,
    "Content-Type: application/problem+json; charset=utf-8",
    `Content-Length: ${Buffer.byteLength(body)}`,
    "Connection: close",
    "",
    body,
  ].join("\r\n");
}

/** The path of a request target, without query or fragment (for `instance`: never echoes a query). */
export function requestPath(url: string): string {
  return url.split(/[?#]/)[0];
}

/** Maps anything thrown in a route (or by Fastify itself) to a problem document. Never leaks internals. */
export function toProblem(err: unknown, req: FastifyRequest): Problem {
  const instance = requestPath(req.url);
  if (err instanceof MeetrecError) {
    const listed = Array.isArray(err.details?.errors) ? (err.details.errors as { field: unknown; message: unknown }[]).map((e) => ({ field: String(e.field), message: String(e.message) })) : undefined;
    const errors = err.code === "validation_failed" && err.details?.field ? listed ?? [{ field: String(err.details.field), message: err.message }] : undefined;
    return problem(err.status, err.code, err.message, instance, errors);
  }
  if (hasZodFastifySchemaValidationErrors(err)) {
    const errors = err.validation.map((v) => {
      const field = [err.validationContext, ...v.instancePath.split("/").filter(Boolean)].join(".");
      const params = v.params as { issue?: { code?: string; keys?: string[] } };
      const extra = params.issue?.code === "unrecognized_keys" ? `: ${params.issue.keys?.join(", ")}` : "";
      return { field, message: `${v.message}${extra}` };
    });
    return problem(422, "validation_failed", `The request is invalid: ${errors.map((e) => `${e.field}: ${e.message}`).join("; ")}`, instance, errors);
  }
  const fe = err as FastifyError;
  if (fe.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE") return problem(415, "unsupported_media_type", "Send the body as application/json (or send no body where the route takes none)", instance);
  if (fe.statusCode === 416) return problem(416, "range_not_satisfiable", "The Range header asks for bytes beyond the end of the file; Content-Range gives its size", instance);
  if (fe.code === "FST_ERR_CTP_BODY_TOO_LARGE") return problem(413, "bad_request", "The request body is too large", instance);
  if (fe.code === "FST_ERR_CTP_EMPTY_JSON_BODY") return problem(400, "bad_request", "The JSON body is empty; send a JSON object", instance);
  if (fe.statusCode === 400 || err instanceof SyntaxError) return problem(400, "bad_request", `The body is not valid JSON: ${fe.message}`, instance);
  if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) return problem(fe.statusCode, "bad_request", fe.message, instance);
  return problem(500, "internal", "Internal error; the server log has the details (search for this path and time)", instance);
}

/** Longest path parameter, characters (a recording id is 36); longer is 414. Fastify's default. */
export const MAX_PARAM_LENGTH = 100;

/**
 * Fastify's `frameworkErrors`: errors of its router before any route runs — a path segment
 * longer than `maxParamLength` (414) and a malformed percent-encoding (400). Never echoes the URL.
 */
export function frameworkError(err: FastifyError, _req: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (err.code === "FST_ERR_MAX_PARAM_LENGTH") {
    return sendProblem(reply, problem(414, "uri_too_long", `A segment of the URL's path is too long (at most ${MAX_PARAM_LENGTH} characters); check the URL you built`));
  }
  if (err.code === "FST_ERR_BAD_URL") {
    return sendProblem(reply, problem(400, "bad_request", "The URL's path is malformed (bad percent-encoding); encode it per RFC 3986"));
  }
  return sendProblem(reply, problem(400, "bad_request", "The request could not be routed; check the URL and its headers"));
}

/**
 * Fastify's `clientErrorHandler`: requests Node's HTTP parser refuses before Fastify sees them
 * (malformed request line or headers → 400, headers over Node's `maxHeaderSize` → 431, request
 * timeout → 408), answered as problem+json on the raw socket. The log gets the parser's error
 * code only: the error object carries the raw request bytes (`rawPacket`), query and headers included.
 */
export function clientErrorHandler(this: FastifyInstance, err: Error & { code?: string }, socket: import("node:net").Socket): void {
  if (err.code === "ECONNRESET" || !socket.writable) return;
  const p = err.code === "HPE_HEADER_OVERFLOW"
    ? problem(431, "headers_too_large", "The request line and headers are too large (at most 16 KiB together); send a shorter URL or fewer headers")
    : err.code === "ERR_HTTP_REQUEST_TIMEOUT"
      ? problem(408, "bad_request", "The request was not received in time; send it again")
      : problem(400, "bad_request", "The request is not valid HTTP/1.1; check the request line and headers");
  this.log.debug({ clientError: err.code, status: p.status }, "client error");
  socket.end(problemHttpMessage(p));
}
