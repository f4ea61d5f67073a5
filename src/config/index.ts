export { Config, BackendConfig, CaptureConfig, VideoSettings, WebhookTarget, SpoolTarget, DeliveryTargets, WEBHOOK_EVENTS, TalkBackend, S3Target, SegmentBucket, EmailTarget } from "./schema.js";
export { loadConfig, parseConfig, applyEnv, ensureDefaultBackend, mediaRoot, segmentBucket } from "./load.js";
export { importNextcloudConf, importNextcloudFile, toYaml as importedYaml, type ImportResult } from "./nextcloud-import.js";
