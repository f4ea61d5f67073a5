/** OpenVidu 2: meetrec as the recording container openvidu-server starts (its env, stop file, files, quick start, settings). */
export { containerMode, recordingFromEnv, quickStartFromEnv } from "./env.js";
export { RecordingFolder, readInfo, sealedFields } from "./files.js";
export { StopFile } from "./stop-file.js";
export { addOpenViduBackend, recordingOptions, recordInContainer, type ContainerDeps } from "./recording.js";
export { QUICK_START_SOCKET, quickStartRequest, runQuickStart, startRecordingEnv } from "./quick-start.js";
export { loadContainerConfig } from "./settings.js";
