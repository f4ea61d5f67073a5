/**
 * Loads the configuration: YAML file (optional) → environment overrides → validation.
 */
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { MeetrecError } from "../util/errors.js";
import { BackendConfig, Config, WEAK_SECRET_CHARS, type SegmentBucket, type VideoLimits } from "./schema.js";
import { importNextcloudConf } from "./nextcloud-import.js";

/** Environment variables that are not config keys. */
const NOT_KEYS = new Set(["MEETREC_CONFIG", "MEETREC_API_KEY"]);

const camel = (s: string) => s.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

function setPath(obj: Record<string, unknown>, path: string[], value: unknown): void {
  let cur = obj;
  for (const key of path.slice(0, -1)) {
    if (typeof cur[key] !== "object" || cur[key] === null) cur[key] = {};
    cur = cur[key] as Record<string, unknown>;
  }
  cur[path[path.length - 1]] = value;
}

/**
 * Applies `MEETREC_*` environment variables to a raw config object: `MEETREC_DATA_DIR` sets
 * `dataDir`, `MEETREC_CAPTURE__SEGMENT_SECONDS` sets `capture.segmentSeconds` (`__` separates
 * levels, values parsed as YAML scalars). `MEETREC_API_KEY` sets `backends.default.apiKey`.
 */
export function applyEnv(raw: Record<string, unknown>, env: NodeJS.ProcessEnv): Record<string, unknown> {
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith("MEETREC_") || value === undefined || NOT_KEYS.has(name)) continue;
    const path = name.slice("MEETREC_".length).split("__").map(camel);
    let parsed: unknown = value;
    try { parsed = parseYaml(value); } catch { /* keep string */ }
    if (parsed === null) parsed = value;
    setPath(raw, path, parsed);
  }
  if (env.MEETREC_API_KEY) setPath(raw, ["backends", "default", "apiKey"], env.MEETREC_API_KEY);
  return raw;
}

/**
 * Validates a raw object. @throws MeetrecError `config_invalid` naming every bad key
 * (`capture.segmentSeconds: Too big: expected number to be <=10`).
 */
export function parseConfig(raw: unknown, source = "configuration"): Config {
  const result = Config.safeParse(raw ?? {});
  if (!result.success) {
    const lines = result.error.issues.map((i) => {
      const key = i.path.join(".") || "(root)";
      return `${key}: ${i.message}`;
    });
    throw new MeetrecError("config_invalid", `Invalid ${source}:\n  ${lines.join("\n  ")}`, { details: { issues: lines } });
  }
  return result.data;
}

/**
 * Loads `path` (or `MEETREC_CONFIG`; no file is fine), applies the environment and validates.
 * A Nextcloud recording server `server.conf` is accepted too; `onNotCarried` is told which of
 * its keys have no meetrec equivalent, and its `[section] key`s that are valid but unwise
 * (`ImportResult.warnings`).
 * @throws MeetrecError `config_invalid` for unreadable YAML or invalid keys.
 */
export function loadConfig(path: string | undefined, env: NodeJS.ProcessEnv = process.env, onNotCarried?: (keys: string[], warnings: string[]) => void): Config {
  const file = path ?? env.MEETREC_CONFIG;
  let raw: Record<string, unknown> = {};
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (err) {
      throw new MeetrecError("config_invalid", `Cannot read config file ${file}: ${(err as Error).message}`);
    }
    if (file.endsWith(".conf") && /^\s*\[(backend|signaling|http|ffmpeg)\]/m.test(text)) {
      // A Nextcloud Talk recording server's server.conf: converted on the fly.
      const imported = importNextcloudConf(text);
      onNotCarried?.(imported.notCarried, imported.warnings);
      raw = imported.config;
    } else try {
      raw = (parseYaml(text) as Record<string, unknown>) ?? {};
    } catch (err) {
      throw new MeetrecError("config_invalid", `Config file ${file} is not valid YAML: ${(err as Error).message}`);
    }
    if (typeof raw !== "object" || Array.isArray(raw)) {
      throw new MeetrecError("config_invalid", `Config file ${file} must be a YAML mapping at the top level`);
    }
  }
  const cfg = parseConfig(applyEnv(raw, env), file ? `config file ${file}` : "configuration");
  cfg.dataDir = resolve(cfg.dataDir);
  for (const b of Object.values(cfg.backends)) if (b.dataDir) b.dataDir = resolve(b.dataDir);
  return cfg;
}

/**
 * The API's absolute base URL (`https://rec.example.com`, no trailing `/`), the one rule for
 * every link meetrec gives out: `publicUrl` when configured; else, answering a request, the
 * scheme and host the request came to (`from`); else `http://{listen}` (`http://localhost`
 * for a unix socket). Links in webhooks queued by a cluster worker are made absolute by the
 * API process that sends them (it has a `listen`; the worker's is its health server's).
 */
export function baseUrl(cfg: Pick<Config, "publicUrl" | "listen">, from?: { protocol: string; host: string }): string {
  if (cfg.publicUrl) return cfg.publicUrl.replace(/\/$/, "");
  if (from) return `${from.protocol}://${from.host}`;
  return cfg.listen.startsWith("unix:") ? "http://localhost" : `http://${cfg.listen}`;
}

/**
 * What is valid but unwise in `cfg`, one line each naming the key (never its value): Talk
 * secrets and signaling internal secrets under {@link WEAK_SECRET_CHARS} characters. Talk's
 * admin settings and the signaling server take any secret, so a working setup imported from a
 * Nextcloud recording server must load; meetrec's own API keys still need 16 (schema).
 * `serve`, `worker` and `config check` print these.
 */
export function configWarnings(cfg: Config): string[] {
  const out: string[] = [];
  const weak = (key: string, secret: string | undefined, where: string) => {
    if (secret !== undefined && secret.length < WEAK_SECRET_CHARS) {
      out.push(`${key} is ${secret.length} character(s): a short secret can be guessed; set one of ${WEAK_SECRET_CHARS} or more random characters ${where} and here`);
    }
  };
  for (const [name, b] of Object.entries(cfg.backends)) weak(`backends.${name}.talk.secret`, b.talk?.secret, "in Talk's admin settings (recording backend)");
  weak("talk.secret", cfg.talk.secret, "in Talk's admin settings (recording backend)");
  weak("talk.signaling.internalSecret", cfg.talk.signaling.internalSecret, "in the signaling server's [clients] internalsecret");
  cfg.talk.signaling.servers.forEach((s, i) => weak(`talk.signaling.servers.${i}.internalSecret`, s.internalSecret, "in that signaling server's [clients] internalsecret"));
  return out;
}

/** The video ceilings of `backend`'s recordings: its `videoLimits`, field by field over the global ones. */
export function videoLimitsOf(cfg: Config, backend: string): VideoLimits {
  return { ...cfg.videoLimits, ...cfg.backends[backend]?.videoLimits };
}

/**
 * With no backend configured, creates the `default` backend with a random key stored in
 * `{dataDir}/api-key` (mode 0600, reused on the next start). Returns the key file path, or
 * undefined when backends were configured.
 */
export function ensureDefaultBackend(cfg: Config): string | undefined {
  if (Object.keys(cfg.backends).length > 0) return undefined;
  mkdirSync(cfg.dataDir, { recursive: true });
  const file = join(cfg.dataDir, "api-key");
  let key: string;
  if (existsSync(file)) {
    key = readFileSync(file, "utf8").trim();
  } else {
    key = randomBytes(24).toString("base64url");
    writeFileSync(file, key + "\n", { mode: 0o600 });
    chmodSync(file, 0o600);
  }
  cfg.backends.default = BackendConfig.parse({ apiKey: key }); // every default of a backend
  return file;
}
