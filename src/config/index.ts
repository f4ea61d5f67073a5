export { Config, BackendConfig, CaptureConfig, VideoSettings, VideoLimits, TALK_VIDEO, VIDEO_UNITS, videoExcess, type VideoExcess, WebhookTarget, SpoolTarget, SPOOL_PACKAGES, type SpoolPackageName, DeliveryTargets, WEBHOOK_EVENTS, TalkBackend, S3Target, SegmentBucket, EmailTarget } from "./schema.js";
export { loadConfig, parseConfig, applyEnv, ensureDefaultBackend, videoLimitsOf, baseUrl } from "./load.js";
export { importNextcloudConf, importNextcloudFile, toYaml as importedYaml, type ImportResult } from "./nextcloud-import.js";
