export { Config, BackendConfig, CaptureConfig, VideoSettings, TALK_VIDEO, VIDEO_UNITS, videoExcess, WebhookTarget, SpoolTarget, type SpoolPackageName, DeliveryTargets, S3Target, SegmentBucket, EmailTarget, S3_KEY_PLACEHOLDER, s3KeyTemplateProblem, AUDIO_FORMATS, AutoStopSettings, START_WHEN, type StartWhen } from "./schema.js";
export { loadConfig, parseConfig, ensureDefaultBackend, videoLimitsOf, baseUrl, configWarnings } from "./load.js";
export { importNextcloudConf, importNextcloudFile, toYaml as importedYaml } from "./nextcloud-import.js";
