/**
 * What of a URL may be shown in a log line, an event on the timeline or an API answer: meeting
 * URLs and request URLs often carry tokens (a BigBlueButton join URL's `checksum`, a Jitsi JWT
 * in `?jwt=`, an API key someone put in `?key=`), so only the parts that name a place survive.
 */

/**
 * `scheme://host[:port]/path` of `url`, without user info, query or fragment; a query or
 * fragment that was there shows as `?…` / `#…`, so a reader knows something was cut. A string
 * that is not an absolute URL is treated as a request target (`/v1/x?key=…` → `/v1/x?…`).
 */
export function redactUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    const q = url.search(/[?#]/);
    return q < 0 ? url : `${url.slice(0, q)}${url[q]}…`;
  }
  if (u.protocol !== "http:" && u.protocol !== "https:" && u.protocol !== "ws:" && u.protocol !== "wss:") {
    return `${u.protocol}…`; // data:, blob:, javascript: … carry their payload in the "path"
  }
  return `${u.protocol}//${u.host}${u.pathname}${u.search ? "?…" : ""}${u.hash ? "#…" : ""}`;
}

/**
 * `text` with every spelling of `url` in it — as given, and as the URL parser prints it —
 * replaced by {@link redactUrl}'s form: for messages of libraries that repeat the URL they
 * were given (a page load's `net::ERR_… at https://user:secret@host/…?token=…`).
 */
export function withoutUrl(text: string, url: string): string {
  let href: string | undefined;
  try {
    href = new URL(url).href;
  } catch { /* not a URL: only the given spelling */ }
  let out = text;
  for (const s of [...new Set([url, href].filter((x): x is string => !!x))].sort((a, b) => b.length - a.length)) out = out.split(s).join(redactUrl(url));
  return out;
}
