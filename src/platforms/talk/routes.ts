/**
 * Nextcloud Talk's recording-server protocol (shared/protocols/nextcloud-talk.md §1), so Talk
 * can use meetrec unchanged: `GET /api/v1/welcome` and `POST /api/v1/room/{token}` with the
 * HMAC checks in the protocol's order. A request whose `Talk-Recording-Random` was already
 * accepted within `talk.replayWindowSeconds` is refused (403) as a replay: Talk's checksum covers
 * only `random ‖ body`, so a captured request stays valid forever otherwise (docs/decisions.md).
 * Answers are plain JSON (`{}`, `{error}`), never problem+json: Talk only looks at the status code.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import { canonicalBackendUrl, checksumMatches } from "./hmac.js";
import type { TalkService } from "./service.js";

const Actor = z.object({ type: z.string().min(1).max(100), id: z.string().min(1).max(255) });
/** Start and stop bodies (protocol §1). */
export const TalkBody = z.discriminatedUnion("type", [
  z.object({ type: z.literal("start"), start: z.object({ status: z.union([z.literal(1), z.literal(2)]).default(1), owner: z.string().min(1).max(255), actor: Actor }) }),
  z.object({ type: z.literal("stop"), stop: z.object({ actor: Actor.optional() }).default({}) }),
]);
export type TalkBody = z.infer<typeof TalkBody>;

/** Largest body read at all; the per-backend `maxMessageSize` is checked after (→ 400). */
const HARD_LIMIT = 1 << 20;

/** Registers the Talk routes on `server` (under `/api/v1`); `talk` does what they ask; `version` is meetrec's. */
export async function registerTalkRoutes(server: FastifyInstance, talk: TalkService, version: string): Promise<void> {
  await server.register(async (routes) => {
    routes.removeAllContentTypeParsers();
    routes.addContentTypeParser("*", { parseAs: "buffer", bodyLimit: HARD_LIMIT }, (_req, body, done) => done(null, body));

    routes.get("/welcome", { schema: { tags: ["nextcloud-talk"], summary: "Talk's health check", security: [] } }, async () => ({ version }));

    routes.post("/room/:token", { schema: { tags: ["nextcloud-talk"], summary: "Start or stop the recording of a Talk conversation (HMAC-signed by Talk)", security: [] } },
      async (req: FastifyRequest, reply: FastifyReply) => {
        const token = (req.params as { token: string }).token;
        const deny = (status: number, why: string) => {
          req.log.warn({ talkToken: token, reason: why }, "Talk request refused");
          return reply.code(status).send({ error: why });
        };
        const header = (name: string) => {
          const v = req.headers[name];
          return typeof v === "string" && v.length > 0 ? v : undefined;
        };
        // 1. backend
        const backendUrl = header("talk-recording-backend");
        if (!backendUrl) return deny(403, "missing Talk-Recording-Backend");
        const match = talk.backendFor(backendUrl);
        if (!match) return deny(403, `backend ${canonicalBackendUrl(backendUrl)} is not configured`);
        // 2. random, checksum
        const random = header("talk-recording-random");
        if (!random) return deny(403, "missing Talk-Recording-Random");
        const checksum = header("talk-recording-checksum");
        if (!checksum) return deny(403, "missing Talk-Recording-Checksum");
        // 3. size
        const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
        if (body.length === 0) return deny(400, "empty body");
        if (body.length > match.maxMessageSize) return deny(400, `body larger than ${match.maxMessageSize} bytes`);
        // 4. checksum
        if (!checksumMatches(match.secret, random, body, checksum)) {
          req.log.warn({ talkBackend: canonicalBackendUrl(backendUrl), talkToken: token }, "Checksum verification failed: the secret configured in Talk's admin settings differs from this backend's talk.secret");
          return reply.code(403).send({ error: "checksum verification failed" });
        }
        // 4b. replay: Talk signs random ‖ body, not the path, and sends a fresh 64-character
        // random with every request, so a random seen before is a captured request sent again.
        if (!await talk.acceptRandom(match.backend, random)) {
          req.log.warn({ talkBackend: canonicalBackendUrl(backendUrl), backend: match.backend, talkToken: token, reason: "replayed Talk-Recording-Random" },
            "Talk request refused: its Talk-Recording-Random was already used by an accepted request (a replayed request); Talk sends a new random with every request");
          return reply.code(403).send({ error: "replayed request: this Talk-Recording-Random was already used" });
        }
        // 5. shape
        let json: unknown;
        try {
          json = JSON.parse(body.toString("utf8"));
        } catch {
          return deny(400, "body is not JSON");
        }
        const parsed = TalkBody.safeParse(json);
        if (!parsed.success) return deny(400, `body is not a start or stop request: ${parsed.error.issues[0]?.message}`);
        if (!/^[a-zA-Z0-9]{1,64}$/.test(token)) return deny(400, "bad conversation token");
        const talkRequest = parsed.data;
        let found = true;
        try {
          if (talkRequest.type === "start") await talk.start(match.backend, canonicalBackendUrl(backendUrl), token, talkRequest.start);
          else found = await talk.stop(match.backend, canonicalBackendUrl(backendUrl), token, talkRequest.stop.actor);
        } catch (err) {
          // A 5xx follows, which Talk retries with the same random: that retry must be accepted.
          await talk.releaseRandom(match.backend, random).catch((e: unknown) => req.log.warn({ err: (e as Error).message, talkToken: token }, "could not release the random of a failed Talk request; Talk's retry of it will be refused as a replay"));
          throw err;
        }
        return found ? reply.code(200).send({}) : reply.code(404).send({ error: "no recording of this conversation" });
      });
  }, { prefix: "/api/v1" });
}
