/** OpenVidu 2: meetrec as the recording container openvidu-server starts (its env, stop file, files, quick start, settings). */
export { containerMode, recordingFromEnv, quickStartFromEnv, RecordingId, WORKING_MODES, type ContainerMode, type OpenViduRecording, type QuickStartPage } from "./env.js";
export { RecordingFolder, readInfo, sealedFields, type InfoSummary, type SealedFields } from "./files.js";
export { StopFile, STOP_POLL_MS } from "./stop-file.js";
export { OPENVIDU_BACKEND, addOpenViduBackend, recordingOptions, recordInContainer, type ContainerDeps, type ContainerOutcome } from "./recording.js";
export { QUICK_START_SOCKET, QuickStartRequest, QuickStartReply, quickStartRequest, runQuickStart, startRecordingEnv } from "./quick-start.js";
export { loadContainerConfig, readDotEnv, DOT_ENV } from "./settings.js";
