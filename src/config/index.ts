export { Config, BackendConfig, CaptureConfig, VideoSettings } from "./schema.js";
export { loadConfig, parseConfig, applyEnv, ensureDefaultBackend } from "./load.js";
