/** Nextcloud Talk: its recording-server routes and service, HMACs, the recording's Talk context, the join adapter and speaking tracker, callbacks, upload (sidecar, container) and its delivery targets. */
export { talkChecksum, checksumMatches, talkRandom, canonicalBackendUrl } from "./hmac.js";

export { ALLOW_ALL_BACKEND, type TalkInfo } from "./info.js";
export { sendTalkCallback, talkFileName, TalkRequestError, USER_AGENT, type TalkConnection } from "./client.js";
export { uploadToTalk, uploadChunked, uploadRecordingToTalk, deliverRecording, talkUploadFile, CHUNK_BYTES, type TalkContainer, type ContainerMemory } from "./upload.js";
export { TRACKER_SCRIPT, READ_SCRIPT, fromPage, speakingTimesFileName, speakingTimesDocument, speakingTimesJson, SpeakingTimesFile } from "./speakers.js";
export { talkJoinAdapter, platformAdapter, internalSecretFor, sameSignalingServer } from "./join-adapter.js";
export { TalkService, addAllowAllBackend, type TalkServiceDeps } from "./service.js";
export { registerTalkRoutes, TalkBody } from "./routes.js";
export { talkCallback, talkCallbackTarget, talkUploadTarget } from "./targets.js";
