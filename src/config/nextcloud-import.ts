/**
 * Reads the Nextcloud Talk recording server's `server.conf` (INI; shared/protocols/
 * nextcloud-talk.md §4) and turns it into meetrec configuration, listing every key that cannot
 * be carried over and why.
 */
import { readFileSync } from "node:fs";
import { parse as parseIni } from "ini";
import { stringify } from "yaml";
import { MeetrecError } from "../util/errors.js";
import { VideoLimits, WEAK_SECRET_CHARS } from "./schema.js";

/** meetrec's default video ceilings (`videoLimits`). */
const DEFAULT_LIMITS = VideoLimits.parse({});

/** The result: a raw meetrec config object plus what was left behind. */
export interface ImportResult {
  config: Record<string, unknown>;
  /** `section.key: why` for every key that has no meetrec equivalent. */
  notCarried: string[];
  /**
   * Keys carried over that are valid but unwise, each naming the `[section] key` and the
   * meetrec key it became: secrets under 16 characters (Talk's admin settings and the
   * signaling server take any secret, so they are kept — the working setup keeps working).
   */
  warnings: string[];
}

const list = (v: unknown) => String(v ?? "").split(",").map((x) => x.trim()).filter(Boolean);
const bool = (v: unknown) => ["true", "yes", "1", "on"].includes(String(v ?? "").trim().toLowerCase());
const int = (v: unknown) => (v === undefined || String(v).trim() === "" ? undefined : Number.parseInt(String(v), 10));
/** Python logging levels → pino levels. */
const LEVELS: Record<number, string> = { 10: "debug", 20: "info", 30: "warn", 40: "error", 50: "fatal" };

/**
 * Converts the text of a `server.conf`. @throws MeetrecError `config_invalid` when a backend or
 * signaling server named in a list has no section or no url.
 */
export function importNextcloudConf(text: string): ImportResult {
  const ini = parseIni(text) as Record<string, Record<string, string>>;
  const notCarried: string[] = [];
  const warnings: string[] = [];
  const config: Record<string, unknown> = {};
  /** Warns about a secret under 16 characters, naming where it came from and where it went. */
  const weak = (iniKey: string, secret: string, key: string, where: string) => {
    if (secret.length < WEAK_SECRET_CHARS) warnings.push(`${iniKey} is ${secret.length} character(s), kept as ${key} so that the setup keeps working; a short secret can be guessed: set one of ${WEAK_SECRET_CHARS} or more random characters ${where} and in meetrec's configuration`);
  };
  const used = new Set<string>();
  const take = (section: string, key: string) => { used.add(`${section}.${key}`); return ini[section]?.[key]; };
  const skip = (section: string, key: string, why: string) => {
    if (ini[section]?.[key] !== undefined) notCarried.push(`[${section}] ${key}: ${why}`);
    used.add(`${section}.${key}`);
  };

  const listen = take("http", "listen");
  if (listen) config.listen = listen.trim();
  const level = int(take("logs", "level"));
  if (level !== undefined) config.logLevel = LEVELS[level] ?? "info";

  const commonVideo = { width: int(take("backend", "videowidth")), height: int(take("backend", "videoheight")) };
  const commonMax = int(take("backend", "maxmessagesize"));
  const commonSecret = take("backend", "secret");
  const commonSkip = bool(take("backend", "skipverify"));
  const commonDir = take("backend", "directory");
  const backends: Record<string, unknown> = {};
  for (const id of list(take("backend", "backends"))) {
    const section = ini[id];
    if (!section?.url) throw new MeetrecError("config_invalid", `server.conf: backend "${id}" is listed in [backend] backends but has no [${id}] section with a url`);
    const own = take(id, "secret");
    const secret = own ?? commonSecret;
    if (!secret) throw new MeetrecError("config_invalid", `server.conf: backend "${id}" has no secret and [backend] has no common secret`);
    take(id, "url");
    const name = id.replace(/[^a-zA-Z0-9_-]/g, "-");
    weak(own ? `[${id}] secret` : `[backend] secret (the common secret of backend ${id})`, secret, `backends.${name}.talk.secret`, "in Talk's admin settings (recording backend)");
    const video = { width: int(take(id, "videowidth")) ?? commonVideo.width, height: int(take(id, "videoheight")) ?? commonVideo.height };
    const max = int(take(id, "maxmessagesize")) ?? commonMax;
    const skipVerify = take(id, "skipverify") === undefined ? commonSkip : bool(take(id, "skipverify"));
    const directory = take(id, "directory") ?? commonDir;
    backends[name] = {
      talk: { url: section.url.trim(), secret, ...(max ? { maxMessageSize: max } : {}), ...(skipVerify ? { skipVerify: true } : {}) },
      ...(video.width && video.height ? { video: { width: video.width, height: video.height } } : {}),
      // A frame size the old server was set to record is allowed here too (above meetrec's default ceiling of 1920×1080).
      ...(video.width && video.height && (video.width > DEFAULT_LIMITS.width || video.height > DEFAULT_LIMITS.height)
        ? { videoLimits: { width: Math.max(DEFAULT_LIMITS.width, video.width), height: Math.max(DEFAULT_LIMITS.height, video.height) } } : {}),
      ...(directory?.trim() ? { dataDir: directory.trim() } : {}),
    };
  }
  if (Object.keys(backends).length) config.backends = backends;

  const talk: Record<string, unknown> = {};
  if (bool(take("backend", "allowall"))) {
    talk.allowAll = true;
    if (commonSecret) {
      talk.secret = commonSecret;
      weak("[backend] secret", commonSecret, "talk.secret", "in Talk's admin settings (recording backend)");
    }
  }
  const signaling: Record<string, unknown> = {};
  const internal = take("signaling", "internalsecret");
  if (internal) {
    signaling.internalSecret = internal;
    weak("[signaling] internalsecret", internal, "talk.signaling.internalSecret", "in the signaling server's [clients] internalsecret");
  }
  const servers = list(take("signaling", "signalings")).map((id, i) => {
    const url = take(id, "url");
    if (!url) throw new MeetrecError("config_invalid", `server.conf: signaling server "${id}" is listed in [signaling] signalings but has no [${id}] section with a url`);
    const own = take(id, "internalsecret");
    const secret = own ?? internal;
    if (!secret) throw new MeetrecError("config_invalid", `server.conf: signaling server "${id}" has no internalsecret and [signaling] has none either`);
    if (own) weak(`[${id}] internalsecret`, own, `talk.signaling.servers.${i}.internalSecret`, "in that signaling server's [clients] internalsecret");
    return { url: url.trim(), internalSecret: secret };
  });
  if (servers.length) signaling.servers = servers;
  if (Object.keys(signaling).length) talk.signaling = signaling;
  if (Object.keys(talk).length) config.talk = talk;

  for (const key of Object.keys(ini.ffmpeg ?? {})) skip("ffmpeg", key, "meetrec encodes H.264/AAC in fragmented MP4 segments (see video and capture settings); ffmpeg arguments are not configurable");
  skip("recording", "browser", "the browser is chosen per recording (Talk recordings use Chromium)");
  for (const key of Object.keys(ini.stats ?? {})) skip("stats", key, "meetrec has no stats endpoint restricted by IP yet");
  for (const [section, keys] of Object.entries(ini)) {
    if (typeof keys !== "object") continue;
    for (const key of Object.keys(keys)) if (!used.has(`${section}.${key}`)) notCarried.push(`[${section}] ${key}: unknown to meetrec`);
  }
  return { config, notCarried, warnings };
}

/** Reads and converts `path`; @throws MeetrecError `config_invalid` when unreadable. */
export function importNextcloudFile(path: string): ImportResult {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new MeetrecError("config_invalid", `Cannot read ${path}: ${(err as Error).message}`);
  }
  return importNextcloudConf(text);
}

/** The YAML to write, with the warnings and the keys that were not carried over as comments at the top. */
export function toYaml(r: ImportResult, source: string): string {
  const head = [`# meetrec configuration imported from ${source}`];
  if (r.warnings.length) head.push("# Warnings:", ...r.warnings.map((n) => `#   ${n}`));
  if (r.notCarried.length) head.push("# Not carried over:", ...r.notCarried.map((n) => `#   ${n}`));
  return `${head.join("\n")}\n${stringify(r.config)}`;
}
