/** Nextcloud Talk: its recording-server routes and service, HMACs, the recording's Talk context, the join adapter, callbacks and upload, and its delivery targets. */
export { talkChecksum, checksumMatches, talkRandom, canonicalBackendUrl } from "./hmac.js";

export { ALLOW_ALL_BACKEND, type TalkInfo } from "./info.js";
export { sendTalkCallback, uploadToTalk, uploadChunked, uploadRecordingToTalk, talkFileName, talkUploadFile, TalkRequestError, USER_AGENT, CHUNK_BYTES, type TalkConnection, type TalkUploadFile } from "./client.js";
export { talkJoinAdapter, platformAdapter, internalSecretFor, sameSignalingServer } from "./join-adapter.js";
export { TalkService, addAllowAllBackend, type TalkServiceDeps } from "./service.js";
export { registerTalkRoutes, TalkBody } from "./routes.js";
export { talkCallback, talkCallbackTarget, talkUploadTarget } from "./targets.js";
