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
import { resolveAutoStop, resolveStart } from "../recordings/index.js";
import type { Logger } from "../util/log.js";

/**
 * The planning of `config`'s recordings; `targets`: the installation's delivery targets
 * (their file targets decide whether a recording ends `delivering`); `uploadFinal`: cluster
 * workers keep the final file in the bucket; `log`: what the platforms' adapters log to.
 */
export function planning(config: Config, targets: DeliveryTargets, uploadFinal: boolean, log: Logger): Omit<PlanContext, "capture"> {
  return {
    place: (rec) => mediaPlace(config, rec),
    egress: (backend) => browserEgressFor(config, backend),
    adapterFor: (rec) => platformAdapter(config, rec, log),
    fileTargets: (rec) => targets.fileTargets(rec),
    autoStop: (rec) => rec.options.autoStop ?? resolveAutoStop(config, config.backends[rec.backend]),
    start: (rec) => rec.options.start ?? resolveStart(config, config.backends[rec.backend]),
    uploadFinal,
  };
}
