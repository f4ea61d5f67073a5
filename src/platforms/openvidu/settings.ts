/**
 * meetrec's configuration inside the OpenVidu recording container. openvidu-server starts the
 * container with its own variables only (shared/protocols/openvidu-recording.md §1), so
 * meetrec's settings come from the image (`MEETREC_CONFIG`, `MEETREC_*` set in a derived
 * image) or, as the naevatec HA recorder reads its own from `/recordings/.env`
 * (`composed.sh`: `source /recordings/.env`), from `{openvidu.recordingsDir}/.env`: `KEY=value`
 * lines whose `MEETREC_*` entries apply like environment variables (the container's own
 * environment wins; other keys, such as the HA recorder's, are ignored).
 */
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseEnv } from "node:util";
import { loadConfig, type Config } from "../../config/index.js";
import { MeetrecError, errorMessage } from "../../util/errors.js";

/** The settings file in the recordings folder. */
export const DOT_ENV = ".env";

/** The `MEETREC_*` entries of the `.env` file `path` ({} when there is none). @throws MeetrecError `config_invalid` when it cannot be read. */
export function readDotEnv(path: string): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw new MeetrecError("config_invalid", `Cannot read ${path}: ${errorMessage(err)}`);
  }
  const all = parseEnv(text) as Record<string, string>;
  return Object.fromEntries(Object.entries(all).filter(([k]) => k.startsWith("MEETREC_")));
}

/**
 * Loads the configuration: `file` (or `MEETREC_CONFIG`) and `env` decide `openvidu.recordingsDir`,
 * then that folder's `.env` adds its `MEETREC_*` settings beneath `env` (it may name
 * `MEETREC_CONFIG` too). `openvidu.recordingsDir` ends absolute.
 * @throws MeetrecError `config_invalid` for a bad key, or when the `.env` sets `openvidu.recordingsDir` to another folder.
 */
export function loadContainerConfig(file: string | undefined, env: NodeJS.ProcessEnv = process.env): Config {
  const dir = resolve(loadConfig(file, env).openvidu.recordingsDir);
  const dotEnv = readDotEnv(join(dir, DOT_ENV));
  const config = loadConfig(file, { ...dotEnv, ...env });
  if (resolve(config.openvidu.recordingsDir) !== dir) {
    throw new MeetrecError("config_invalid", `${join(dir, DOT_ENV)} sets openvidu.recordingsDir to another folder; the folder is where that file is read from: set it in the environment or the config file instead`);
  }
  config.openvidu.recordingsDir = dir;
  return config;
}
