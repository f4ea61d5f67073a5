/**
 * Requests meetrec sends to Talk (shared/protocols/nextcloud-talk.md §2): status callbacks and
 * the file upload. Every request carries `OCS-APIRequest: true`, a fresh 64-character
 * `Talk-Recording-Random`, `Talk-Recording-Checksum` and a `User-Agent` naming meetrec.
 */
import { execFile } from "node:child_process";
import { openAsBlob } from "node:fs";
import { rm } from "node:fs/promises";
import { promisify } from "node:util";
import { egressDispatcher, type EgressPolicy } from "../../egress/index.js";
import { talkChecksum, talkRandom } from "./hmac.js";

export const USER_AGENT = "meetrec/0.1.0 (Nextcloud Talk recording server)";

/** A failed request to Talk; `status` 0 for network errors, `talkError` = Talk's error code (`ocs.data.error`, e.g. `size`). */
export class TalkRequestError extends Error {
  constructor(message: string, readonly status: number, readonly talkError?: string) {
    super(message);
    this.name = "TalkRequestError";
  }
}

/**
 * How requests reach a Talk instance: through the egress policy (`named`: a Talk backend of the
 * configuration, allowed on any address; Talk URLs that arrive in requests under `talk.allowAll`
 * are not), optionally without TLS verification (`skipVerify`, self-signed test instances only).
 */
export interface TalkConnection {
  egress: EgressPolicy;
  named: boolean;
  skipVerify?: boolean;
}

async function send(url: string, init: RequestInit, timeoutMs: number, conn: TalkConnection): Promise<Response> {
  let res: Response;
  try {
    const dispatcher = egressDispatcher(conn.egress, url, { named: conn.named, skipVerify: conn.skipVerify });
    res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs), redirect: "manual", dispatcher } as RequestInit);
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code === "EGRESS_REFUSED" || (err as { code?: string }).code === "egress_refused" ? cause?.message ?? (err as Error).message : cause?.code ?? cause?.message ?? (err as Error).message;
    throw new TalkRequestError(`Talk at ${new URL(url).origin} unreachable: ${why}`, 0);
  }
  if (res.status >= 200 && res.status < 300) return res;
  const text = await res.text().catch(() => "");
  let code: string | undefined;
  try {
    // Talk's OCS answer {"ocs": {"meta": …, "data": {"error": code}}} (RecordingController's
    // DataResponse(['error' => …]) inside the OCS envelope); a bare {"error": code} too.
    const j = JSON.parse(text) as { error?: unknown; ocs?: { data?: { error?: unknown } } };
    const e = j?.ocs?.data?.error ?? j?.error;
    code = typeof e === "string" ? e : typeof (e as { code?: unknown })?.code === "string" ? (e as { code: string }).code : undefined;
  } catch { /* OCS XML or empty */ }
  const hint = res.status === 401 || res.status === 403 ? " (is the secret in Talk's admin settings the same as this backend's talk.secret?)" : "";
  throw new TalkRequestError(`Talk answered ${res.status}${code ? ` (${code})` : ""}${hint}`, res.status, code);
}

function headers(secret: string, signed: string | Buffer): Record<string, string> {
  const random = talkRandom(64);
  return {
    "OCS-APIRequest": "true",
    "Accept": "application/json",
    "User-Agent": USER_AGENT,
    "Talk-Recording-Random": random,
    "Talk-Recording-Checksum": talkChecksum(secret, random, signed),
  };
}

/**
 * POSTs a status callback (`started` / `stopped` / `failed`) to
 * `{backendUrl}/ocs/v2.php/apps/spreed/api/v1/recording/backend`; checksum over the JSON body.
 * @throws TalkRequestError on any non-2xx answer or network error.
 */
export async function sendTalkCallback(secret: string, backendUrl: string, body: unknown, timeoutMs: number, conn: TalkConnection): Promise<string> {
  const json = JSON.stringify(body);
  const res = await send(`${backendUrl}/ocs/v2.php/apps/spreed/api/v1/recording/backend`, {
    method: "POST", headers: { ...headers(secret, json), "Content-Type": "application/json" }, body: json,
  }, timeoutMs, conn);
  return `HTTP ${res.status}`;
}

/** `Recording YYYY-MM-DD HH-MM-SS.ext` in UTC, as Talk's own recorder names files. */
export function talkFileName(startedAt: Date, ext: string): string {
  const p = (n: number) => String(n).padStart(2, "0");
  const d = startedAt;
  return `Recording ${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ${p(d.getUTCHours())}-${p(d.getUTCMinutes())}-${p(d.getUTCSeconds())}.${ext}`;
}

/** A file as Talk gets it: its path, the extension of the name Talk sees, its content type, and what removes it after. */
export interface TalkUploadFile { path: string; ext: "mp4"; contentType: "video/mp4"; cleanup(): Promise<void> }

/**
 * The file to hand to Talk for `file` (meetrec's `recording.mp4` / `recording.m4a`). Talk stores
 * only the formats of spreed's RecordingService::DEFAULT_ALLOWED_RECORDING_FORMATS (ogg, ogv,
 * mp4, webm, mkv): the multipart `store` sniffs the bytes (nextcloud/server Detection::detectContent,
 * libmagic) and wants the extension of the sniffed type; `request-upload` refuses other
 * extensions (`file_extension`). An audio-only M4A (`ftyp` brand `M4A `, sniffed `audio/x-m4a`)
 * is refused either way (`file_mimetype`), so it is remuxed — stream copy, no re-encode — into an
 * MP4 (brand `isom`, sniffed `video/mp4`) beside it, uploaded as `.mp4` and removed by `cleanup`.
 * A video MP4 is used as it is.
 * @throws Error when ffmpeg cannot remux the file.
 */
export async function talkUploadFile(file: string, ffmpegPath = "ffmpeg"): Promise<TalkUploadFile> {
  if (!file.endsWith(".m4a")) return { path: file, ext: "mp4", contentType: "video/mp4", cleanup: async () => undefined };
  const out = `${file.slice(0, -".m4a".length)}.talk-${talkRandom(8)}.mp4`;
  try {
    await promisify(execFile)(ffmpegPath, ["-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i", file, "-map", "0", "-c", "copy", "-f", "mp4", "-movflags", "+faststart", out]);
  } catch (err) {
    await rm(out, { force: true });
    throw new Error(`could not remux the audio recording into an MP4 for Talk: ${((err as { stderr?: string }).stderr || (err as Error).message).trim().slice(-400)}`);
  }
  return { path: out, ext: "mp4", contentType: "video/mp4", cleanup: () => rm(out, { force: true }) };
}

/** Size of a WebDAV chunk, bytes: with S3 primary storage Nextcloud's chunking v2 (apps/dav ChunkingV2Plugin) sends each chunk as an S3 part, and S3 wants ≥ 5 MiB for all but the last. */
export const CHUNK_BYTES = 10 * 1024 * 1024;

interface UploadArgs { secret: string; backendUrl: string; token: string; owner: string; file: string; fileName: string; contentType: string; timeoutMs: number; conn: TalkConnection }

/**
 * Uploads in chunks (newer Talk): `request-upload` → WebDAV chunking v2 on the returned
 * create-only share (MKCOL, PUT 1…n, MOVE .file with Destination + OC-Total-Length, basic auth
 * share token : password) → `store` with `{owner, fileName}`. Returns undefined when Talk
 * answers 404 to `request-upload` (an older Talk: use the single multipart upload).
 * @throws TalkRequestError for any other failure.
 */
export async function uploadChunked(o: UploadArgs, chunkBytes = CHUNK_BYTES): Promise<string | undefined> {
  const api = `${o.backendUrl}/ocs/v2.php/apps/spreed/api/v1/recording/${encodeURIComponent(o.token)}`;
  let share: { token: string; password: string; fileName: string };
  try {
    const res = await send(`${api}/request-upload`, {
      method: "POST", headers: { ...headers(o.secret, o.token), "Content-Type": "application/json" }, body: JSON.stringify({ owner: o.owner, fileName: o.fileName }),
    }, o.timeoutMs, o.conn);
    share = ((await res.json()) as { ocs: { data: typeof share } }).ocs.data;
  } catch (err) {
    if (err instanceof TalkRequestError && err.status === 404) return undefined;
    throw err;
  }
  const blob = await openAsBlob(o.file);
  const auth = `Basic ${Buffer.from(`${share.token}:${share.password}`).toString("base64")}`;
  const uploadDir = `${o.backendUrl}/public.php/dav/uploads/${encodeURIComponent(share.token)}/meetrec-${talkRandom(16)}`;
  const dav = {
    Authorization: auth,
    Destination: `${o.backendUrl}/public.php/dav/files/${encodeURIComponent(share.token)}/${encodeURIComponent(share.fileName)}`,
    "OC-Total-Length": String(blob.size),
    "User-Agent": USER_AGENT,
  };
  await send(uploadDir, { method: "MKCOL", headers: dav }, o.timeoutMs, o.conn);
  for (let n = 1, at = 0; at < blob.size || n === 1; n++, at += chunkBytes) {
    await send(`${uploadDir}/${n}`, { method: "PUT", headers: { ...dav, "Content-Type": "application/octet-stream" }, body: blob.slice(at, at + chunkBytes) }, o.timeoutMs, o.conn);
    if (at + chunkBytes >= blob.size) break;
  }
  await send(`${uploadDir}/.file`, { method: "MOVE", headers: dav }, o.timeoutMs, o.conn);
  const res = await send(`${api}/store`, {
    method: "POST", headers: { ...headers(o.secret, o.token), "Content-Type": "application/json" }, body: JSON.stringify({ owner: o.owner, fileName: share.fileName }),
  }, o.timeoutMs, o.conn);
  return `uploaded in ${Math.max(1, Math.ceil(blob.size / chunkBytes))} chunk(s) as "${share.fileName}" (HTTP ${res.status})`;
}

/**
 * Hands the recording to Talk: chunked when Talk supports it, else (404 on `request-upload`)
 * or when the chunked upload fails, the single multipart `store`. A refusal of both is thrown,
 * and the delivery retries it later; the file stays until Talk has it.
 * @throws TalkRequestError from the last method tried.
 */
export async function uploadRecordingToTalk(o: UploadArgs): Promise<string> {
  let chunkedError: unknown;
  try {
    const done = await uploadChunked(o);
    if (done) return done;
  } catch (err) {
    chunkedError = err;
  }
  try {
    return await uploadToTalk(o);
  } catch (err) {
    if (chunkedError) throw new TalkRequestError(`chunked upload: ${(chunkedError as Error).message}; single upload: ${(err as Error).message}`, (err as TalkRequestError).status ?? 0, (err as TalkRequestError).talkError);
    throw err;
  }
}

/**
 * Uploads the file with `POST …/recording/{token}/store` as multipart/form-data (`owner`,
 * `file`); checksum over the conversation token, not the body (protocol §2 Upload). The file is
 * streamed from disk.
 * @throws TalkRequestError (`talkError` = `size`, `invalid_file`, … on 400).
 */
export async function uploadToTalk(o: UploadArgs): Promise<string> {
  const form = new FormData();
  form.set("owner", o.owner);
  form.set("file", new File([await openAsBlob(o.file)], o.fileName, { type: o.contentType }));
  const res = await send(`${o.backendUrl}/ocs/v2.php/apps/spreed/api/v1/recording/${encodeURIComponent(o.token)}/store`, {
    method: "POST", headers: headers(o.secret, o.token), body: form,
  }, o.timeoutMs, o.conn);
  return `uploaded as "${o.fileName}" (HTTP ${res.status})`;
}
