/**
 * Nextcloud Talk's side of meetrec (shared/protocols/nextcloud-talk.md §1): which configured
 * backend a Talk request comes from, its replay guard, and starting and stopping the recording
 * of a conversation. The routes (`routes.ts`) check the request; this does what it asks.
 */
import { randomUUID } from "node:crypto";
import { TALK_VIDEO, type Config } from "../../config/index.js";
import type { Dispatcher } from "../../dispatch/index.js";
import type { Recording, RecordingStore } from "../../store/index.js";
import type { Logger } from "../../util/log.js";
import { canonicalBackendUrl } from "./hmac.js";
import { ALLOW_ALL_BACKEND, type TalkInfo } from "./info.js";

/** What the service works with. */
export interface TalkServiceDeps {
  config: Config;
  store: RecordingStore;
  dispatcher: Pick<Dispatcher, "submit">;
  /** Stops a recording as the native API does. */
  stop(id: string): Promise<unknown>;
  log: Logger;
  /** Clock of the replay window (tests move it forward); default: the system clock. */
  now?: () => Date;
}

/**
 * With `talk.allowAll`, adds the synthetic backend `talk-any` (any Talk URL, the common
 * secret) to `config` unless it exists, and warns: development only. Call once at start-up.
 */
export function addAllowAllBackend(config: Config, log: Logger): void {
  if (!config.talk.allowAll || config.backends[ALLOW_ALL_BACKEND]) return;
  log.warn("talk.allowAll is on: any Talk instance that knows the common secret may record (development only)");
  config.backends[ALLOW_ALL_BACKEND] = { allowedOrigins: [], allowedRequestOrigins: ["public"], delivery: { webhooks: [] }, audioFormat: "aac", talk: { url: "http://talk-any.invalid/", secret: config.talk.secret!, maxMessageSize: 1024, skipVerify: false, container: "auto" } };
}

/** See module doc. */
export class TalkService {
  /** Serializes starts so that two concurrent starts of one conversation make one recording. */
  private lock: Promise<void> = Promise.resolve();

  constructor(private readonly d: TalkServiceDeps) {}

  /**
   * The backend a Talk request comes from (`Talk-Recording-Backend`, trailing `/` ignored), with
   * the secret to check it; with `talk.allowAll`, any URL maps to the synthetic backend
   * `talk-any` and the common secret.
   */
  backendFor(url: string): { backend: string; secret: string; maxMessageSize: number } | undefined {
    const want = canonicalBackendUrl(url);
    for (const [name, b] of Object.entries(this.d.config.backends)) {
      if (b.talk && name !== ALLOW_ALL_BACKEND && canonicalBackendUrl(b.talk.url) === want) return { backend: name, secret: b.talk.secret, maxMessageSize: b.talk.maxMessageSize };
    }
    const any = this.d.config.backends[ALLOW_ALL_BACKEND]?.talk;
    return any ? { backend: ALLOW_ALL_BACKEND, secret: any.secret, maxMessageSize: any.maxMessageSize } : undefined;
  }

  /**
   * Accepts `random` (a request's verified `Talk-Recording-Random`) for `backend` once within
   * `talk.replayWindowSeconds`: `false` means it was already used — a replayed request, to be
   * refused. Shared by every API process on the same store.
   * @throws the store's error when the database cannot be reached.
   */
  acceptRandom(backend: string, random: string): Promise<boolean> {
    return this.d.store.rememberTalkRandom(backend, random, this.d.config.talk.replayWindowSeconds * 1000, this.d.now?.() ?? new Date());
  }

  /** Releases a random {@link acceptRandom} took, for a request answered with a 5xx (Talk retries it with the same random). */
  releaseRandom(backend: string, random: string): Promise<void> {
    return this.d.store.forgetTalkRandom(backend, random);
  }

  /** The live recording of Talk conversation `token` for `backend`, if any. */
  private async live(backend: string, backendUrl: string, token: string): Promise<Recording | undefined> {
    return (await this.d.store.listUnfinished()).find((r) => {
      const t = r.metadata.talk as TalkInfo | undefined;
      return r.backend === backend && t?.token === token && t.backendUrl === backendUrl && !["finalizing", "delivering"].includes(r.status);
    });
  }

  /**
   * Talk asked to record conversation `token` (protocol §1 start). Idempotent: a second start
   * while one is live does nothing. Video uses the backend's size, else Talk's 1920×1080.
   */
  async start(backend: string, backendUrl: string, token: string, start: { status: 1 | 2; owner: string; actor: { type: string; id: string } }): Promise<Recording> {
    const { config, store, dispatcher, log } = this.d;
    const run = this.lock.then(async () => {
      const live = await this.live(backend, backendUrl, token);
      if (live) return live;
      const b = config.backends[backend];
      const talk: TalkInfo = { token, backendUrl, owner: start.owner, actor: start.actor, status: start.status };
      const options = {
        url: `${backendUrl}/index.php/call/${token}/recording`, join: [], mode: start.status === 2 ? ("audio" as const) : ("video" as const),
        browser: "chromium" as const, video: { ...config.video, ...TALK_VIDEO, ...b?.video },
        maxDurationSeconds: Math.min(config.maxDurationSeconds, b?.maxDurationSeconds ?? Infinity),
        ...(b?.talk?.skipVerify ? { acceptInsecureCerts: true } : {}),
      };
      const rec = await store.create({ id: randomUUID(), backend, options, metadata: { talk } });
      log.info({ recordingId: rec.id, backend, talkToken: token, mode: options.mode }, "Talk asked for a recording");
      await dispatcher.submit(rec.id, options);
      return rec;
    });
    this.lock = run.then(() => undefined, () => undefined);
    return run;
  }

  /** Talk asked to stop conversation `token`; false when nothing of it is live (→ 404). */
  async stop(backend: string, backendUrl: string, token: string, actor?: { type: string; id: string }): Promise<boolean> {
    const live = await this.live(backend, backendUrl, token);
    if (!live) return false;
    await this.d.store.mergeMetadata(live.id, { talk: { ...(live.metadata.talk as TalkInfo), stopActor: actor ?? null } });
    await this.d.stop(live.id);
    return true;
  }
}
