/** recordings: the use cases behind the API and the CLI, the request and metadata rules, the views, retention. */
export { Recordings } from "./service.js";
export { Retention } from "./retention.js";
export { RecordingRequest, resolveOptions, resolveAutoStop, resolveStart } from "./request.js";
export { MetadataPatchRequest } from "./metadata.js";
export { RecordingView, ATTEMPTS_SHOWN, toView, withBase, toDeliveryViews } from "./view.js";
