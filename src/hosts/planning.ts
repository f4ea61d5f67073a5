/**
 * How recordings are planned in this installation ({@link PlanContext} without the capture
 * settings): the media layout, the egress rules, the platforms' join adapters and the delivery
 * targets — the same in the embedded server and on a cluster worker but for `uploadFinal`.
 */
import type { Config } from "../config/index.js";
import type { DeliveryTargets } from "../delivery/index.js";
import { browserEgressFor } from "../egress/index.js";
import { mediaPlace } from "../media/index.js";
import { platformAdapter } from "../platforms/talk/index.js";
import type { PlanContext } from "../recorder/index.js";

/**
 * The planning of `config`'s recordings; `targets`: the installation's delivery targets
 * (their file targets decide whether a recording ends `delivering`); `uploadFinal`: cluster
 * workers keep the final file in the bucket.
 */
export function planning(config: Config, targets: DeliveryTargets, uploadFinal: boolean): Omit<PlanContext, "capture"> {
  return {
    place: (rec) => mediaPlace(config, rec),
    egress: (backend) => browserEgressFor(config, backend),
    adapterFor: (rec) => platformAdapter(config, rec),
    fileTargets: (rec) => targets.fileTargets(rec),
    uploadFinal,
  };
}
