/** Nextcloud Talk: its recording-server routes and service, HMACs, the recording's Talk context, the join adapter and speaking tracker, callbacks, upload (sidecar, container) and its delivery targets. */
export { talkChecksum, checksumMatches, talkRandom } from "./hmac.js";

export { sendTalkCallback, TalkRequestError } from "./client.js";
export { uploadToTalk, uploadChunked, uploadRecordingToTalk, deliverRecording, talkUploadFile, CHUNK_BYTES, type TalkContainer, type ContainerMemory } from "./upload.js";
export { TRACKER_SCRIPT, READ_SCRIPT, fromPage, speakingTimesFileName, speakingTimesDocument, speakingTimesJson, SpeakingTimesFile } from "./speakers.js";
export { platformAdapter, internalSecretFor, sameSignalingServer } from "./join-adapter.js";
export { TalkService, addAllowAllBackend } from "./service.js";
export { registerTalkRoutes } from "./routes.js";
export { talkCallback, talkCallbackTarget, talkUploadTarget } from "./targets.js";
