/**
 * The HTTP API (Fastify): native `/v1` REST, health, the OpenAPI document (generated from the
 * route schemas) and its rendered reference at `/docs`.
 *
 * Over 300 lines: the whole route table (health, metrics, every `/v1` route with its schema)
 * reads as one list, the way the OpenAPI document shows it; the shapes live in `recordings/`.
 */
import fastifyStatic from "@fastify/static";
import fastifySwagger from "@fastify/swagger";
import fastifySwaggerUi from "@fastify/swagger-ui";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { jsonSchemaTransform, serializerCompiler, validatorCompiler, type ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { baseUrl, type Config } from "../config/index.js";
import type { Readiness } from "../dispatch/index.js";
import { fileContentType, speakersFileName, trackFileName, toHlsPlaylist, type FileSource, type RecordingFiles } from "../media/index.js";
import type { Metrics } from "../metrics/index.js";
import { registerTalkRoutes, type TalkService } from "../platforms/talk/index.js";
import { ATTEMPTS_SHOWN, MetadataPatchRequest, RecordingRequest, RecordingView, toDeliveryViews, toView, type Recordings } from "../recordings/index.js";
import { RECORDING_STATUSES, TERMINAL, type Recording } from "../store/index.js";
import { MeetrecError } from "../util/errors.js";
import { httpLogger, type Logger } from "../util/log.js";
import { redactUrl } from "../util/redact.js";
import { KeyRing } from "./auth.js";
import { MAX_PARAM_LENGTH, Problem, clientErrorHandler, frameworkError, problem, requestPath, sendProblem, toProblem } from "./problem.js";

/** What the API serves: a host (embedded or cluster API) gives it these parts. */
export interface ApiDeps {
  config: Config;
  recordings: Recordings;
  files: RecordingFiles;
  talk: TalkService;
  metrics: Metrics;
  /** `/readyz`: whether a recording could start now, and the capacity. */
  readiness(): Promise<Readiness>;
}

declare module "fastify" {
  interface FastifyRequest {
    /** Backend the bearer key belongs to (set on /v1 routes). */
    backend: string;
  }
}

const VERSION = "0.1.0";
const IdParams = z.object({ id: z.string().uuid().describe("Recording id") });
const errors = { 400: Problem, 401: Problem, 404: Problem, 405: Problem, 409: Problem, 415: Problem, 422: Problem };
/** Methods the 405 answer looks for on a path (HEAD is routed with every GET). */
const METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] as const;

/**
 * Builds the server (not listening). The parts in `app` do the work; the API only validates,
 * authorizes and shapes answers.
 */
export async function buildServer(app: ApiDeps, log: Logger): Promise<FastifyInstance> {
  // The instance is returned as a plain FastifyInstance: callers only listen, inject and close.
  const server = Fastify({
    loggerInstance: httpLogger(log), bodyLimit: 64 * 1024, trustProxy: false,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH }, frameworkErrors: frameworkError, clientErrorHandler,
  }).withTypeProvider<ZodTypeProvider>();
  server.setValidatorCompiler(validatorCompiler);
  server.setSerializerCompiler(serializerCompiler);
  server.setErrorHandler((err, req, reply) => {
    const p = toProblem(err, req);
    if (p.status >= 500) req.log.error({ err }, "request failed");
    reply.removeHeader("content-disposition"); // set by the download routes before sendFile
    // 416 names the file's size (RFC 9110 §14.4): @fastify/send puts it on the error as Content-Range.
    const range = (err as { headers?: Record<string, string> }).headers?.["Content-Range"];
    if (p.status === 416 && range) reply.header("content-range", range);
    return sendProblem(reply, p);
  });
  server.setNotFoundHandler((req, reply) => {
    reply.removeHeader("content-disposition"); // @fastify/static's sendFile calls this for a file gone meanwhile
    const path = requestPath(req.url);
    // A path that exists with other methods is a 405 with Allow (RFC 9110 §15.5.6), not a 404.
    const allow = METHODS.filter((method) => server.findRoute({ method, url: path }) !== null);
    if (allow.length > 0 && !allow.includes(req.method as (typeof METHODS)[number])) {
      reply.header("allow", allow.join(", "));
      return sendProblem(reply, problem(405, "method_not_allowed", `${req.method} is not allowed on this path; use ${allow.join(", ")}`, path));
    }
    return sendProblem(reply, problem(404, "not_found", `No route ${req.method} ${redactUrl(req.url)}; /openapi.json lists the routes`, path));
  });

  await server.register(fastifySwagger, {
    openapi: {
      openapi: "3.1.0",
      info: { title: "meetrec API", version: VERSION, description: "Record web video meetings. Authenticate with `Authorization: Bearer <backend API key>`." },
      components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
  });
  await server.register(fastifySwaggerUi, { routePrefix: "/docs" });
  await server.register(fastifyStatic, { root: app.config.dataDir, serve: false });

  server.get("/openapi.json", { schema: { hide: true } }, async () => server.swagger());
  server.get("/healthz", { schema: { tags: ["health"], summary: "Alive", security: [], response: { 200: z.object({ status: z.literal("ok"), version: z.string() }) } } },
    async () => ({ status: "ok" as const, version: VERSION }));
  const Capacity = z.object({
    cpuBudget: z.number().describe("cores"), cpuUsed: z.number().describe("cores"), cpuLeft: z.number().describe("cores"),
    freeMemoryBytes: z.number(), freeDiskBytes: z.number(),
    cost: z.object({ video: z.number(), audio: z.number() }).optional().describe("Cores one recording costs now (video: a 1280×720@30 one; others scale by pixels × fps): measured on this machine once recordings ran here, else capacity.cost"),
    measured: z.record(z.string(), z.number()).optional().describe("Every kind of recording measured on this machine and what it costs, cores: `audio`, `video:{width}x{height}@{fps}`"),
    canAccept: z.object({ video: z.boolean(), audio: z.boolean() }),
    refusal: z.enum(["cpu", "memory", "disk", "overloaded"]).optional().describe("Why a video recording would wait now (`overloaded`: a recording here is repeating or dropping frames now)"),
  });
  const Ready = z.object({
    ready: z.boolean().describe("A video recording would start now (here, or on some worker of the cluster)"),
    active: z.number(), queued: z.number(),
    capacity: Capacity.optional().describe("This machine's capacity (embedded mode)"),
    workers: z.array(z.object({ name: z.string(), active: z.number(), capacity: Capacity })).optional().describe("Live workers (cluster mode)"),
    problem: z.string().optional().describe("Cluster mode: why readiness is unknown (redis_unreachable)"),
  });
  server.get("/readyz", {
    schema: { tags: ["health"], summary: "Can accept a recording now (200) or not (503), and the capacity left", security: [], response: { 200: Ready, 503: Ready } },
  }, async (_req, reply) => {
    const body = await app.readiness();
    return reply.code(body.ready ? 200 : 503).send(body);
  });
  server.get("/metrics", { schema: { tags: ["health"], summary: "Prometheus metrics (text format 0.0.4)", security: [] } }, async (_req, reply) => {
    const m = await app.metrics.render();
    return reply.type(m.contentType).send(m.body);
  });

  await registerTalkRoutes(server as unknown as FastifyInstance, app.talk, VERSION);

  const keys = new KeyRing(app.config);
  const base = (req: FastifyRequest) => baseUrl(app.config, req);
  const { recordings, files } = app;
  /** Sends a file from disk (with ranges) or streams it from the bucket. */
  const sendSource = (reply: FastifyReply, src: FileSource, type: string) => (src.where === "disk"
    ? reply.type(type).sendFile(src.rel, src.dir, { acceptRanges: true, cacheControl: false })
    : reply.type(type).send(src.body));

  await server.register(async (v1) => {
    v1.decorateRequest("backend", "");
    v1.addHook("onRequest", async (req, reply) => {
      const backend = keys.backendFor(req.headers.authorization);
      if (!backend) {
        reply.header("www-authenticate", 'Bearer realm="meetrec"');
        return sendProblem(reply, problem(401, "unauthorized", "Missing or wrong API key: send Authorization: Bearer <key> (see backends.<name>.apiKey)", requestPath(req.url)));
      }
      req.backend = backend;
    });
    // Bodies on /v1 are JSON only (no text/plain parser: a text body is 415, not a string to
    // validate), and an empty JSON body is no body: clients send content-type: application/json
    // with nothing on bodyless POST/DELETE. A route that needs a body refuses it itself.
    v1.removeContentTypeParser(["application/json", "text/plain"]);
    const json = v1.getDefaultJsonParser("error", "error");
    v1.addContentTypeParser("application/json", { parseAs: "string" }, (req, body, done) => {
      if (body === "") return done(null, undefined);
      json(req, body as string, done);
    });
    const r = v1.withTypeProvider<ZodTypeProvider>();

    r.post("/recordings", {
      schema: { tags: ["recordings"], summary: "Start recording a meeting", body: RecordingRequest, response: { 201: RecordingView, ...errors } },
      preValidation: async (req) => {
        if (req.body === undefined) throw new MeetrecError("bad_request", "The request has no body; send a JSON object with at least url, e.g. {\"url\": \"https://meet.example.com/room\"}");
      },
    }, async (req, reply) => {
      const rec = await recordings.create(req.backend, req.body);
      return reply.code(201).header("location", `/v1/recordings/${rec.id}`).send(toView(rec, base(req), await recordings.events(rec.id)));
    });

    r.get("/recordings", {
      schema: {
        tags: ["recordings"], summary: "List recordings, newest first",
        querystring: z.strictObject({
          status: z.enum(RECORDING_STATUSES).optional(),
          limit: z.coerce.number().int().min(1).max(1000).default(100),
        }),
        response: { 200: z.object({ recordings: z.array(RecordingView) }), ...errors },
      },
    }, async (req) => {
      const list = await recordings.list({ status: req.query.status, backend: req.backend, limit: req.query.limit });
      return { recordings: list.map((x) => toView(x, base(req))) };
    });

    /** The full view of `GET /v1/recordings/{id}`: timeline, deliveries, the file's link. */
    const fullView = async (rec: Recording, req: FastifyRequest) => {
      const { deliveries, attempts } = await recordings.deliveries(rec.id, ATTEMPTS_SHOWN);
      const view = toView(rec, base(req), await recordings.events(rec.id));
      const url = await recordings.fileUrl(rec);
      if (view.file && url) view.file.url = url;
      return { ...view, deliveries: toDeliveryViews(deliveries, attempts) };
    };

    r.get("/recordings/:id", {
      schema: { tags: ["recordings"], summary: "A recording with its progress and event timeline", params: IdParams, response: { 200: RecordingView, ...errors } },
    }, async (req) => fullView(await recordings.get(req.params.id, req.backend), req));

    r.patch("/recordings/:id", {
      schema: {
        tags: ["recordings"], summary: "Change a recording's metadata until its delivery has ended",
        description: "Merges `metadata` into the recording's (a key set to `null` is removed). Allowed until the delivery has ended: "
          + "not once the recording is `completed` or `aborted`, nor `failed` without a file (409). Checked like a new recording "
          + "(spool sub-directory, owner's address; 422, nothing changed). Deliveries read the metadata at each attempt; "
          + "`POST …/redeliver` tries again now.",
        params: IdParams, body: MetadataPatchRequest, response: { 200: RecordingView, ...errors },
      },
    }, async (req) => fullView(await recordings.patchMetadata(req.params.id, req.backend, req.body.metadata), req));

    r.post("/recordings/:id/redeliver", {
      schema: {
        tags: ["recordings"], summary: "Deliver again now: retry unfinished deliveries and send the file to every file target again",
        description: "Retries every pending or given-up delivery now and sends the file again to each file target that has nothing unfinished. "
          + "A recording that failed because its delivery was given up (`delivery_failed`) goes back to `delivering`. "
          + "One redelivery at a time: until each delivery it made due has been attempted, another answers 409 `conflict`.",
        params: IdParams, response: { 202: z.object({ scheduled: z.number().describe("Deliveries now due") }), ...errors },
      },
    }, async (req, reply) => reply.code(202).send({ scheduled: await recordings.redeliver(req.params.id, req.backend) }));

    r.post("/recordings/:id/stop", {
      schema: { tags: ["recordings"], summary: "Stop a recording (it is then finalized)", params: IdParams, response: { 202: RecordingView, ...errors } },
    }, async (req, reply) => {
      const rec = await recordings.stop(req.params.id, req.backend);
      return reply.code(202).send(toView(rec, base(req)));
    });

    r.post("/recordings/:id/pause", {
      schema: { tags: ["recordings"], summary: "Pause capturing: the recorder stays in the meeting and captures nothing until /resume (the file holds the captured time only)", params: IdParams, response: { 202: RecordingView, ...errors } },
    }, async (req, reply) => {
      const rec = await recordings.setPaused(req.params.id, true, req.backend);
      return reply.code(202).send(toView(rec, base(req)));
    });

    r.post("/recordings/:id/resume", {
      schema: { tags: ["recordings"], summary: "Capture again after /pause (a new period begins)", params: IdParams, response: { 202: RecordingView, ...errors } },
    }, async (req, reply) => {
      const rec = await recordings.setPaused(req.params.id, false, req.backend);
      return reply.code(202).send(toView(rec, base(req)));
    });

    r.delete("/recordings/:id", {
      schema: { tags: ["recordings"], summary: "Stop if live, then delete the recording and its files", params: IdParams, response: { 204: z.null(), ...errors } },
    }, async (req, reply) => {
      await recordings.delete(req.params.id, req.backend);
      return reply.code(204).send(null);
    });

    r.get("/recordings/:id/file", {
      schema: {
        tags: ["recordings"], summary: "Download the finished file (HTTP Range supported, RFC 9110 §14)", params: IdParams,
        response: { 200: z.any().describe("video/mp4, audio/mp4 (.m4a) or audio/ogg (.ogg)"), 206: z.any(), ...errors },
      },
    }, async (req, reply) => {
      const rec = await recordings.get(req.params.id, req.backend);
      const range = typeof req.headers.range === "string" ? req.headers.range : undefined;
      const src = await files.file(rec, range).catch((err: unknown) => {
        // 416 names the file's size (RFC 9110 §14.4); the bucket does not say it.
        if (err instanceof MeetrecError && err.code === "range_not_satisfiable" && rec.file) reply.header("content-range", `bytes */${rec.file.bytes}`);
        throw err;
      });
      reply.header("content-disposition", `attachment; filename="${rec.id}-${rec.file!.name}"`);
      if (src.where === "bucket") {
        // Cluster: the file is in the segment bucket; streamed through, ranges passed on.
        reply.header("accept-ranges", "bytes");
        if (src.length !== undefined) reply.header("content-length", src.length);
        if (range && src.contentRange) reply.code(206).header("content-range", src.contentRange);
        return reply.type(fileContentType(rec.file!.name)).send(src.body);
      }
      return reply.sendFile(src.rel, src.dir, { acceptRanges: true, cacheControl: false });
    });

    r.get("/recordings/:id/speakers", {
      schema: {
        tags: ["recordings"], summary: "Who spoke when in the finished file: the speakers sidecar ({file}.speakers.json; start/end in s of the file)", params: IdParams,
        response: { 200: z.any().describe("{version, file, fileStartedAt, sources: [{id, name}], intervals: [{source, name, start, end, startedAt, endedAt, startType, stopType}]}"), ...errors },
      },
    }, async (req, reply) => {
      const doc = await recordings.speakers(req.params.id, req.backend);
      reply.header("content-disposition", `attachment; filename="${req.params.id}-${speakersFileName(doc.file)}"`);
      return reply.type("application/json").send(doc);
    });

    r.get("/recordings/:id/tracks/:n", {
      schema: {
        tags: ["recordings"], summary: "Download one per-participant audio track of the finished file (`tracks: true`): `{file}.track-{n}.ogg`, Opus in Ogg; its offset in the file is in `file.tracks`",
        params: z.object({ id: z.string().uuid(), n: z.coerce.number().int().min(1).max(100000) }),
        response: { 200: z.any().describe("audio/ogg"), 206: z.any(), ...errors },
      },
    }, async (req, reply) => {
      const rec = await recordings.get(req.params.id, req.backend);
      const src = await files.track(rec, req.params.n);
      const name = trackFileName(rec.file!.name, req.params.n);
      reply.header("content-disposition", `attachment; filename="${rec.id}-${name}"`);
      if (src.where === "bucket") {
        if (src.length !== undefined) reply.header("content-length", src.length);
        return reply.type("audio/ogg").send(src.body);
      }
      return reply.sendFile(src.rel, src.dir, { acceptRanges: true, cacheControl: false });
    });

    r.get("/recordings/:id/live.m3u8", {
      schema: { tags: ["recordings"], summary: "HLS playlist of the segments stored so far (watch while it records)", params: IdParams, response: { 200: z.string(), ...errors } },
    }, async (req, reply) => {
      const rec = await recordings.get(req.params.id, req.backend);
      const manifest = await files.manifest(rec); // this machine's, or the segment bucket's (cluster)
      if (!manifest) throw new MeetrecError("not_ready", "No media yet; try again once the recording is recording");
      if (rec.file) throw new MeetrecError("not_ready", "The recording is finalized and its segments were stitched; download /file instead");
      return reply.type("application/vnd.apple.mpegurl").send(toHlsPlaylist(manifest, TERMINAL.includes(rec.status), (f) => `media/${f}`));
    });

    r.get("/recordings/:id/media/:period/:file", {
      schema: {
        tags: ["recordings"], summary: "An init or media segment named by live.m3u8",
        params: z.object({ id: z.string().uuid(), period: z.string().regex(/^p\d{1,6}$/), file: z.string().regex(/^(init\.mp4|\d{6}\.m4s)$/) }),
        response: { 200: z.any(), ...errors },
      },
    }, async (req, reply) => {
      const rec = await recordings.get(req.params.id, req.backend);
      return sendSource(reply, await files.segment(rec, `${req.params.period}/${req.params.file}`), "video/mp4");
    });
  }, { prefix: "/v1" });

  return server as unknown as FastifyInstance;
}

/** Parses `listen` (`host:port` or `unix:/path`) into Fastify listen options. */
export function listenOptions(listen: string): { host: string; port: number } | { path: string } {
  if (listen.startsWith("unix:")) return { path: listen.slice(5) };
  const i = listen.lastIndexOf(":");
  const host = listen.slice(0, i).replace(/^\[|\]$/g, "");
  const port = Number(listen.slice(i + 1));
  if (i < 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new MeetrecError("config_invalid", `listen: "${listen}" is not host:port or unix:/path`);
  }
  return { host: host || "127.0.0.1", port };
}

export { buildWorkerServer } from "./worker-server.js";
