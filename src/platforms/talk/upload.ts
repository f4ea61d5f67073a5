/**
 * Handing a recording to Talk (shared/protocols/nextcloud-talk.md §2 "Upload", §6.3): the
 * chunked upload through a create-only share (newer Talk), else the single multipart `store`;
 * the speaking-times sidecar with either; and the container Talk takes — MP4, or Matroska for a
 * Talk from before MP4 recordings (spreed PR #17635), made by stream copy and remembered per
 * backend.
 *
 * Over 300 lines because both upload flows, the sidecar in each and the container fallback
 * that retries them are one protocol step: split, the order Talk needs (chunks, sidecar, store;
 * refusal, remux, retry) would be spread over files.
 */
import { execFile } from "node:child_process";
import { openAsBlob } from "node:fs";
import { rm } from "node:fs/promises";
import { promisify } from "node:util";
import { TalkRequestError, USER_AGENT, headers, send, talkFileName, type TalkConnection } from "./client.js";
import { talkRandom } from "./hmac.js";
import { speakingTimesFileName } from "./speakers.js";

/** The containers meetrec gives Talk: MP4 (Talk since spreed PR #17635), else Matroska (every Talk with recording). */
export type TalkContainer = "mp4" | "mkv";

/** A file as Talk gets it: its path, the extension of the name Talk sees, its content type, and what removes it after. */
export interface TalkUploadFile { path: string; ext: TalkContainer; contentType: "video/mp4" | "video/x-matroska"; cleanup(): Promise<void> }

/**
 * The file to hand to Talk for `file` (meetrec's `recording.mp4` / `recording.m4a`) in
 * `container`. Talk stores only the formats of spreed's RecordingService
 * DEFAULT_ALLOWED_RECORDING_FORMATS (@03177dd: ogg, ogv, mp4, webm, mkv; before PR #17635 the
 * same without mp4): the multipart `store` sniffs the bytes (nextcloud/server
 * Detection::detectContent, libmagic) and wants the extension of the sniffed type;
 * `request-upload` refuses other extensions (`file_extension`).
 * - `mp4`: a video MP4 as it is; an audio-only M4A (`ftyp` brand `M4A `, sniffed `audio/x-m4a`,
 *   which Talk refuses) remuxed into an MP4 (brand `isom`, sniffed `video/mp4`).
 * - `mkv`: either remuxed into Matroska (sniffed `video/x-matroska`, audio-only too).
 * A remux is a stream copy (no re-encode) into a file beside `file`, removed by `cleanup`.
 * @throws Error when ffmpeg cannot remux the file.
 */
export async function talkUploadFile(file: string, container: TalkContainer = "mp4", ffmpegPath = "ffmpeg"): Promise<TalkUploadFile> {
  const contentType = container === "mp4" ? "video/mp4" : "video/x-matroska";
  if (container === "mp4" && !file.endsWith(".m4a")) return { path: file, ext: "mp4", contentType, cleanup: async () => undefined };
  const out = `${file.replace(/\.(mp4|m4a)$/, "")}.talk-${talkRandom(8)}.${container}`;
  const format = container === "mp4" ? ["-f", "mp4", "-movflags", "+faststart"] : ["-f", "matroska"];
  try {
    await promisify(execFile)(ffmpegPath, ["-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i", file, "-map", "0", "-c", "copy", ...format, out]);
  } catch (err) {
    await rm(out, { force: true });
    throw new Error(`could not remux the recording into ${container === "mp4" ? "an MP4" : "Matroska"} for Talk: ${((err as { stderr?: string }).stderr || (err as Error).message).trim().slice(-400)}`);
  }
  return { path: out, ext: container, contentType, cleanup: () => rm(out, { force: true }) };
}

/** Size of a WebDAV chunk, bytes: with S3 primary storage Nextcloud's chunking v2 (apps/dav ChunkingV2Plugin) sends each chunk as an S3 part, and S3 wants ≥ 5 MiB for all but the last. */
export const CHUNK_BYTES = 10 * 1024 * 1024;

/**
 * One upload: the conversation, its owner, the file and the name Talk gets it under, and the
 * speaking-times sidecar's JSON when there is one (its name follows from the file's, §6.2).
 */
export interface UploadArgs {
  secret: string;
  backendUrl: string;
  token: string;
  owner: string;
  file: string;
  fileName: string;
  contentType: string;
  timeoutMs: number;
  conn: TalkConnection;
  /** The sidecar (`speakers.ts` `speakingTimesJson`), absent when nobody spoke. */
  sidecar?: string;
}

/**
 * Uploads in chunks (newer Talk; §2, §6.3): `request-upload` → WebDAV chunking v2 on the
 * returned create-only share (MKCOL, PUT 1…n, MOVE .file with Destination + OC-Total-Length,
 * basic auth share token : password) → the sidecar, if any, as one WebDAV `PUT` into the same
 * share → `store` with `{owner, fileName}` (+ `intervalsFileName` when the sidecar is there).
 * A sidecar Talk refuses does not hold the recording back: once the file is in the share only
 * `store` makes Talk take it, so `store` follows without `intervalsFileName` and the result
 * says so. Returns undefined when Talk answers 404 to `request-upload` (an older Talk: use the
 * single multipart upload).
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
  const files = `${o.backendUrl}/public.php/dav/files/${encodeURIComponent(share.token)}`;
  const uploadDir = `${o.backendUrl}/public.php/dav/uploads/${encodeURIComponent(share.token)}/meetrec-${talkRandom(16)}`;
  const dav = {
    Authorization: auth,
    Destination: `${files}/${encodeURIComponent(share.fileName)}`,
    "OC-Total-Length": String(blob.size),
    "User-Agent": USER_AGENT,
  };
  await send(uploadDir, { method: "MKCOL", headers: dav }, o.timeoutMs, o.conn);
  for (let n = 1, at = 0; at < blob.size || n === 1; n++, at += chunkBytes) {
    await send(`${uploadDir}/${n}`, { method: "PUT", headers: { ...dav, "Content-Type": "application/octet-stream" }, body: blob.slice(at, at + chunkBytes) }, o.timeoutMs, o.conn);
    if (at + chunkBytes >= blob.size) break;
  }
  await send(`${uploadDir}/.file`, { method: "MOVE", headers: dav }, o.timeoutMs, o.conn);
  let intervalsFileName: string | undefined;
  let sidecarNote = "";
  if (o.sidecar !== undefined) {
    const name = speakingTimesFileName(share.fileName);
    try {
      await send(`${files}/${encodeURIComponent(name)}`, {
        method: "PUT", headers: { Authorization: auth, "User-Agent": USER_AGENT, "Content-Type": "application/json" }, body: o.sidecar,
      }, o.timeoutMs, o.conn);
      intervalsFileName = name;
      sidecarNote = ` with its speaking times "${name}"`;
    } catch (err) {
      sidecarNote = ` without its speaking times (${(err as Error).message})`;
    }
  }
  const res = await send(`${api}/store`, {
    method: "POST", headers: { ...headers(o.secret, o.token), "Content-Type": "application/json" },
    body: JSON.stringify({ owner: o.owner, fileName: share.fileName, ...(intervalsFileName ? { intervalsFileName } : {}) }),
  }, o.timeoutMs, o.conn);
  return `uploaded in ${Math.max(1, Math.ceil(blob.size / chunkBytes))} chunk(s) as "${share.fileName}"${sidecarNote} (HTTP ${res.status})`;
}

/**
 * Uploads the file with `POST …/recording/{token}/store` as multipart/form-data (`owner`,
 * `file`, and the sidecar as `intervalsFile` named by §6.2); checksum over the conversation
 * token, not the body (protocol §2 Upload). The file is streamed from disk. A Talk without
 * speaker intervals ignores the extra part.
 * @throws TalkRequestError (`talkError` = `size`, `invalid_file`, `file_mimetype`, … on 400).
 */
export async function uploadToTalk(o: UploadArgs): Promise<string> {
  const form = new FormData();
  form.set("owner", o.owner);
  form.set("file", new File([await openAsBlob(o.file)], o.fileName, { type: o.contentType }));
  const name = speakingTimesFileName(o.fileName);
  if (o.sidecar !== undefined) form.set("intervalsFile", new File([o.sidecar], name, { type: "application/json" }));
  const res = await send(`${o.backendUrl}/ocs/v2.php/apps/spreed/api/v1/recording/${encodeURIComponent(o.token)}/store`, {
    method: "POST", headers: headers(o.secret, o.token), body: form,
  }, o.timeoutMs, o.conn);
  return `uploaded as "${o.fileName}"${o.sidecar !== undefined ? ` with its speaking times "${name}"` : ""} (HTTP ${res.status})`;
}

/**
 * Hands the recording to Talk: chunked when Talk supports it, else (404 on `request-upload`)
 * or when the chunked upload fails (§6.5: e.g. `sharing_disabled`, spreed #18458), the single
 * multipart `store`. A refusal of both is thrown, and the delivery retries it later; the file
 * stays until Talk has it.
 * @throws TalkRequestError from the last method tried (`talkError` of the multipart `store`).
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

/** Whether Talk refused a file for its type: `file_mimetype`, what a Talk before spreed PR #17635 answers to every MP4 (RecordingService::validateFileFormat). */
export function refusedType(err: unknown): boolean {
  return err instanceof TalkRequestError && err.talkError === "file_mimetype";
}

/** What a backend's Talk last took a recording in (the store keeps it; `talk_containers`). */
export interface ContainerMemory {
  get(): Promise<TalkContainer | undefined>;
  remember(container: TalkContainer): Promise<void>;
}

/** A recording to hand over: the upload's target and sidecar, meetrec's file, and how to pick its container. */
export interface RecordingUpload extends Omit<UploadArgs, "file" | "fileName" | "contentType"> {
  /** meetrec's finished file (`recording.mp4` / `recording.m4a`). */
  file: string;
  /** When the recording started: the file's name (`Recording YYYY-MM-DD HH-MM-SS.ext`). */
  startedAt: Date;
  /** The backend's `talk.container`. */
  setting: "auto" | TalkContainer;
  memory: ContainerMemory;
  ffmpegPath: string;
}

/**
 * Uploads a recording in the container Talk takes ({@link uploadRecordingToTalk}):
 * - `mp4` / `mkv`: that one;
 * - `auto`: what the backend's Talk last took (MP4 when nothing is remembered). When Talk
 *   refuses an MP4 with `file_mimetype`, the same recording is remuxed into Matroska by stream
 *   copy and sent again at once, and Matroska is remembered for the backend.
 * Every upload that succeeds is remembered, so `auto` starts from what worked last (after an
 * upgraded Talk took an MP4 under `mp4`, `auto` sends MP4 again).
 * @throws TalkRequestError when Talk refuses the upload (retried later by the delivery); with
 * `mp4` refused for its type, the message says to use `auto` or `mkv`. Error when a remux fails.
 */
export async function deliverRecording(o: RecordingUpload): Promise<string> {
  const remembered = await o.memory.get();
  const first: TalkContainer = o.setting === "auto" ? remembered ?? "mp4" : o.setting;
  const attempt = async (container: TalkContainer): Promise<string> => {
    const upload = await talkUploadFile(o.file, container, o.ffmpegPath);
    try {
      return await uploadRecordingToTalk({ ...o, file: upload.path, fileName: talkFileName(o.startedAt, upload.ext), contentType: upload.contentType });
    } finally {
      await upload.cleanup();
    }
  };
  let done: string;
  let used = first;
  try {
    done = await attempt(first);
  } catch (err) {
    if (!refusedType(err) || first !== "mp4") throw err;
    if (o.setting === "mp4") {
      throw new TalkRequestError(`${(err as Error).message}: this Talk does not take MP4 recordings (it predates spreed PR #17635); set talk.container to auto or mkv for this backend`, (err as TalkRequestError).status, (err as TalkRequestError).talkError);
    }
    used = "mkv";
    done = `${await attempt("mkv")}; Talk refused the MP4 (file_mimetype: a Talk before MP4 recordings), so it went as Matroska, as will the next ones for this backend`;
  }
  // Talk has the recording now: a failure to remember must not make the delivery send it again.
  if (used !== remembered) await o.memory.remember(used).catch(() => undefined);
  return done;
}
