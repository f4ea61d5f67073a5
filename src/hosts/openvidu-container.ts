/**
 * The OpenVidu recording container's host (`meetrec openvidu-recorder`): one process per
 * container that records what openvidu-server asks for on this machine — an in-memory store
 * (the recording's truth is its media and OpenVidu's files on the recordings folder, and the
 * layout URL it holds carries OpenVidu's secret: it never touches a disk), a recorder node
 * whose recordings keep their media on the recordings folder (`openviduMediaPlace`) and keep
 * their segments until the platform has written OpenVidu's files, and no delivery targets
 * (openvidu-server takes the file from the folder). Composition only: the OpenVidu rules are in
 * `platforms/openvidu/`.
 */
import { hostname } from "node:os";
import type { Config } from "../config/index.js";
import { DeliveryTargets } from "../delivery/index.js";
import { openviduMediaPlace } from "../media/index.js";
import type { ContainerDeps } from "../platforms/openvidu/index.js";
import { RecorderNode } from "../recorder/index.js";
import { RecordingStore } from "../store/index.js";
import type { Logger } from "../util/log.js";
import { planning } from "./planning.js";

/** See module doc. {@link OpenViduContainerHost.start}, then {@link OpenViduContainerHost.close}. */
export class OpenViduContainerHost implements ContainerDeps {
  private constructor(readonly config: Config, readonly log: Logger, readonly store: RecordingStore, readonly node: RecorderNode) {}

  /** Opens the store and the recorder node. @throws MeetrecError `store_failed`. */
  static async start(config: Config, log: Logger): Promise<OpenViduContainerHost> {
    const store = await RecordingStore.openSqlite(":memory:");
    const recordingsDir = config.openvidu.recordingsDir;
    const node = new RecorderNode({
      config, store, log, name: hostname(), failoverReason: "restart",
      planning: { ...planning(config, new DeliveryTargets(config, []), false, log), place: (rec) => openviduMediaPlace(config, recordingsDir, rec), keepSegments: true },
    });
    return new OpenViduContainerHost(config, log, store, node);
  }

  /** Stops the sound daemon if this process started it, and closes the store. Recordings must have ended. */
  async close(): Promise<void> {
    await this.node.close();
    await this.store.close();
  }
}
