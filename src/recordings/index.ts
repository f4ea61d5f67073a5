/** recordings: the use cases behind the API and the CLI, the request and metadata rules, the views, retention. */
export { Recordings, type RecordingsDeps } from "./service.js";
export { Retention } from "./retention.js";
export { RecordingRequest, resolveOptions, resolveAutoStop, resolveStart, checkOrigin } from "./request.js";
export { MetadataPatchRequest, RESERVED_METADATA_KEYS } from "./metadata.js";
export { RecordingView, DeliveryView, EventView, ATTEMPTS_SHOWN, toView, withBase, toDeliveryViews } from "./view.js";
