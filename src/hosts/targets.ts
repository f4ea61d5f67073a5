/**
 * The delivery targets of this installation, the same in every host: meetrec's own and the
 * platforms'. A new target is one file and one line here (a platform's spool package: one
 * entry in the spool target's packages). The order is the order deliveries
 * are queued in, within each kind (see {@link DeliveryTargets}): file targets in the order a
 * recording's file goes out, notify targets in the order a change is told.
 */
import type { Config } from "../config/index.js";
import { DeliveryTargets, emailTarget, s3Target, spoolTarget, webhookTarget } from "../delivery/index.js";
import { meetStorageEventTarget } from "../platforms/lasuite-meet/index.js";
import { pilosSpoolPackage } from "../platforms/pilos/index.js";
import { talkCallbackTarget, talkUploadTarget } from "../platforms/talk/index.js";

/** Every delivery target, installed for `config`'s backends. */
export function deliveryTargets(config: Config): DeliveryTargets {
  return new DeliveryTargets(config, [
    talkUploadTarget,
    s3Target,
    spoolTarget({ pilos: pilosSpoolPackage }),
    webhookTarget,
    emailTarget,
    talkCallbackTarget,
    meetStorageEventTarget,
  ]);
}
