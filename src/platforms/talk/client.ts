/**
 * How meetrec talks to Talk (shared/protocols/nextcloud-talk.md §2): the transport every request
 * goes through, and the status callbacks. Every OCS request carries `OCS-APIRequest: true`, a
 * fresh 64-character `Talk-Recording-Random`, `Talk-Recording-Checksum` and a `User-Agent`
 * naming meetrec. The upload is in `upload.ts`.
 */
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

/**
 * Sends one request to Talk through the egress policy, without following redirects.
 * @throws TalkRequestError on a non-2xx answer (with Talk's error code from its OCS body) or a network error (status 0).
 */
export async function send(url: string, init: RequestInit, timeoutMs: number, conn: TalkConnection): Promise<Response> {
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

/** The headers of an OCS request to Talk, signed over `signed` (the JSON body, or the conversation token). */
export function headers(secret: string, signed: string | Buffer): Record<string, string> {
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
