/**
 * Nextcloud Talk's delivery targets (shared/protocols/nextcloud-talk.md §2): `talk:callback`,
 * the status callbacks Talk waits for, and `talk:upload`, the finished file uploaded into the
 * conversation. Both are for recordings of a Talk conversation (`metadata.talk`) of a backend
 * that is a Talk instance.
 */
import type { BackendConfig } from "../../config/index.js";
import type { DeliveryContext, FileTarget, NotifyTarget, RequestedRecording } from "../../delivery/index.js";
import type { Recording, RecordingStatus } from "../../store/index.js";
import { sendTalkCallback, type TalkConnection } from "./client.js";
import { ALLOW_ALL_BACKEND, type TalkInfo } from "./info.js";
import { speakingTimesDocument, speakingTimesJson } from "./speakers.js";
import { deliverRecording, type TalkContainer } from "./upload.js";

/** Whether a recording came from a Talk conversation (Talk's start request; `metadata.talk`). */
function hasTalkConversation(rec: Pick<Recording, "metadata">): boolean {
  return typeof rec.metadata.talk === "object" && rec.metadata.talk !== null;
}

/**
 * The Talk status callback a change calls for (protocol §2), or undefined: `started` when
 * capture begins; `stopped` when it stops (or a stop came before capture began); `failed`
 * when it fails before it was stopped. Talk waits in "Starting" until `started` or `failed`.
 */
export function talkCallback(rec: Recording, from: RecordingStatus): unknown {
  const t = rec.metadata.talk as TalkInfo | undefined;
  if (!t) return undefined;
  const stopped = () => ({ type: "stopped", stopped: { token: t.token, ...(t.stopActor ? { actor: t.stopActor } : {}) } });
  if (rec.status === "recording") return { type: "started", started: { token: t.token, status: t.status, actor: t.actor } };
  if (rec.status === "stopping") return stopped();
  if (rec.status === "aborted" && from !== "stopping") return stopped();
  if (rec.status === "failed" && ["queued", "starting", "recording"].includes(from)) return { type: "failed", failed: { token: t.token } };
  return undefined;
}

/**
 * The recording's conversation and how to reach its Talk instance.
 * @throws Error when the backend is no Talk instance (any more) or the recording names no conversation (retried).
 */
function talkOf(rec: Recording, ctx: DeliveryContext): { t: TalkInfo; talk: NonNullable<BackendConfig["talk"]>; conn: TalkConnection } {
  const t = rec.metadata.talk as TalkInfo | undefined;
  const talk = ctx.backend.talk;
  if (!talk || !t) throw new Error(`recording ${rec.id} has no Talk backend or conversation`);
  // A configured Talk instance was named by the operator; under talk.allowAll the URL came with the request.
  return { t, talk, conn: { egress: ctx.egress, named: rec.backend !== ALLOW_ALL_BACKEND, skipVerify: talk.skipVerify } };
}

/**
 * `talk:callback`: the status callback each change calls for ({@link talkCallback}), sent
 * signed to the Talk instance the recording came from ({@link sendTalkCallback}).
 */
export const talkCallbackTarget: NotifyTarget = {
  name: "talk:callback",
  kind: "notify",
  plan(rec, _backend, change) {
    const callback = talkCallback(rec, change.from);
    return callback ? [{ target: "talk:callback", payload: callback }] : [];
  },
  async deliver(d, rec, ctx) {
    const { t, talk, conn } = talkOf(rec, ctx);
    return sendTalkCallback(talk.secret, t.backendUrl, d.payload, ctx.config.delivery.attemptTimeoutMs, conn);
  },
};

/**
 * `talk:upload`: the finished file goes into the conversation (protocol §2 "Upload"), named
 * as Talk names recordings, with the speaking-times sidecar when the call page saw anyone
 * speak (§6), in the container the backend's Talk takes (`talk.container`; `upload.ts`
 * `deliverRecording`, remembered in the store per backend and Talk URL); at least 10 minutes
 * per attempt. Only for a recording of a Talk conversation: a native-API recording of a
 * backend that is also a Talk instance names no conversation to upload to.
 */
export const talkUploadTarget: FileTarget = {
  name: "talk:upload",
  kind: "file",
  plan: (rec: RequestedRecording, backend) => (backend.talk && hasTalkConversation(rec) ? ["talk:upload"] : []),
  async deliver(_d, rec, ctx) {
    const { t, talk, conn } = talkOf(rec, ctx);
    const sidecar = speakingTimesDocument(await ctx.store.speakerIntervals(rec.id), rec.file?.timeline);
    return deliverRecording({
      secret: talk.secret, backendUrl: t.backendUrl, token: t.token, owner: t.owner, file: await ctx.filePath(rec),
      startedAt: new Date(rec.startedAt ?? rec.createdAt), setting: talk.container, ffmpegPath: ctx.config.capture.ffmpegPath,
      memory: {
        get: async () => (await ctx.store.talkContainer(rec.backend, t.backendUrl)) as TalkContainer | undefined,
        remember: (container) => ctx.store.rememberTalkContainer(rec.backend, t.backendUrl, container),
      },
      sidecar: sidecar && speakingTimesJson(sidecar),
      timeoutMs: Math.max(ctx.config.delivery.attemptTimeoutMs, 600_000), conn,
    });
  },
};
