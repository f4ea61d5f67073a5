export { Config, BackendConfig, CaptureConfig, VideoSettings, VideoLimits, TALK_VIDEO, VIDEO_UNITS, videoExcess, type VideoExcess, WebhookTarget, SpoolTarget, DeliveryTargets, WEBHOOK_EVENTS, TalkBackend, S3Target, SegmentBucket, EmailTarget, S3_KEY_PLACEHOLDER, s3KeyTemplateProblem, AUDIO_FORMATS, AutoStopSettings } from "./schema.js";
export { loadConfig, parseConfig, applyEnv, ensureDefaultBackend, videoLimitsOf, baseUrl, configWarnings } from "./load.js";
export { importNextcloudConf, importNextcloudFile, toYaml as importedYaml, type ImportResult } from "./nextcloud-import.js";
