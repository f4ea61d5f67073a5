/**
 * Joining a Talk call (shared/protocols/nextcloud-talk.md §3). The recording page
 * `{backend}index.php/call/{token}/recording` offers `OCA.Talk.*` functions:
 * 1. `signalingGetSettingsForRecording(token, random, checksum)`, checksum = hex
 *    HMAC-SHA256(backend secret, random) — gives the signaling settings (`server` = its URL);
 * 2. `signalingJoinCallForRecording(token, settings, {random, token: hex HMAC-SHA256(internal
 *    secret, random), backend})` — joins as an internal client, silently, without media;
 * and on stop `signalingKill()`. Secrets stay in this process: only HMACs reach the page.
 * After the join it installs the speaking tracker (§6.1, `speakers.ts`) and, at the stop,
 * reads what it saw — before `signalingKill()`, as the reference recorder's `disconnect` does.
 */
import type { Page } from "puppeteer-core";
import type { PlatformAdapter } from "../../capture/index.js";
import type { Config } from "../../config/index.js";
import type { SpeakerInterval } from "../../store/index.js";
import { MeetrecError, errorMessage } from "../../util/errors.js";
import type { Logger } from "../../util/log.js";
import { talkChecksum, talkRandom } from "./hmac.js";
import { ALLOW_ALL_BACKEND, type TalkInfo } from "./info.js";
import { READ_SCRIPT, TRACKER_SCRIPT, fromPage } from "./speakers.js";

/** `https://x/`, `wss://x` and `http://x/` name the same signaling server: compare host + path. */
export function sameSignalingServer(a: string, b: string): boolean {
  const norm = (u: string) => {
    const url = new URL(u.replace(/^ws(s?):/, "http$1:"));
    return `${url.host}${url.pathname.replace(/\/+$/, "")}`;
  };
  try {
    return norm(a) === norm(b);
  } catch {
    return false;
  }
}

/** The internal secret for a signaling server URL: a per-server entry, else the common one. */
export function internalSecretFor(config: Config, server: string): string | undefined {
  return config.talk.signaling.servers.find((s) => sameSignalingServer(s.url, server))?.internalSecret ?? config.talk.signaling.internalSecret;
}

const PAGE_TIMEOUT_MS = 30_000;

/**
 * Installs the speaking tracker after the join; a failure is logged and the recording goes on
 * without speaker intervals (as the reference recorder does).
 */
async function trackSpeakers(page: Page, log: Logger): Promise<boolean> {
  try {
    const result = await page.evaluate(TRACKER_SCRIPT);
    if (result === "noSimpleWebRTC") log.warn("the Talk call page has no OCA.Talk.SimpleWebRTC: speaking intervals will not be tracked");
    else if (result === "noSignalingConnection") log.warn("the Talk call page has no signaling connection: speaking intervals of SIP participants will not be tracked");
    return result !== "noSimpleWebRTC";
  } catch (err) {
    log.warn({ err: errorMessage(err).split("\n")[0] }, "could not set up speaker tracking in the Talk call page; recording without speaker intervals");
    return false;
  }
}

/** Builds the Talk adapter of one recording; `log` carries the recording's id. */
export function talkJoinAdapter(config: Config, backendSecret: string, talk: TalkInfo, log: Logger): PlatformAdapter {
  const call = async <T>(page: Page, what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await Promise.race([fn(), new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`no answer in ${PAGE_TIMEOUT_MS / 1000} s`)), PAGE_TIMEOUT_MS))]);
    } catch (err) {
      const msg = (err as Error).message.split("\n")[0];
      throw new MeetrecError("join_failed", `Talk ${what} failed: ${msg}`, { cause: err });
    }
  };
  /** Pages whose tracker was installed (a page that never joined has nothing to read). */
  const tracked = new WeakSet<Page>();
  return {
    async join(page) {
      await call(page, "page", () => page.waitForFunction("typeof window.OCA?.Talk?.signalingGetSettingsForRecording === 'function'", { timeout: PAGE_TIMEOUT_MS }))
        .catch(() => { throw new MeetrecError("join_failed", "The Talk recording page does not offer OCA.Talk.signalingGetSettingsForRecording: is this Talk version supported, and is the call starting?"); });
      const r1 = talkRandom(64);
      const settings = await call(page, "signalingGetSettingsForRecording", () => page.evaluate(
        (t, r, c) => (window as any).OCA.Talk.signalingGetSettingsForRecording(t, r, c), talk.token, r1, talkChecksum(backendSecret, r1)));
      const server = (settings as { server?: string } | null)?.server;
      if (!server) throw new MeetrecError("join_failed", "Talk gave no signaling server: is the high-performance backend configured in Talk?");
      const internal = internalSecretFor(config, server);
      if (!internal) throw new MeetrecError("join_failed", `No internal secret for signaling server ${new URL(server.replace(/^ws/, "http")).origin}: set talk.signaling.internalSecret or add it to talk.signaling.servers`);
      const r2 = talkRandom(64);
      try {
        await call(page, "signalingJoinCallForRecording", () => page.evaluate(
          (t, s, c) => (window as any).OCA.Talk.signalingJoinCallForRecording(t, s, c),
          talk.token, settings as object, { random: r2, token: talkChecksum(internal, r2), backend: `${talk.backendUrl}/` }));
      } catch (err) {
        if (/Authentication failed for signaling server/i.test((err as Error).message)) {
          throw new MeetrecError("join_failed", `The signaling server ${new URL(server.replace(/^ws/, "http")).origin} rejected meetrec's internal secret: talk.signaling internalSecret differs from the signaling server's [clients] internalsecret`);
        }
        throw err;
      }
      if (await trackSpeakers(page, log)) tracked.add(page);
    },
    async speakers(page): Promise<SpeakerInterval[]> {
      if (!tracked.has(page)) return [];
      try {
        const { intervals, dropped } = fromPage(await page.evaluate(READ_SCRIPT));
        if (dropped > 0) log.warn({ dropped }, "the Talk call page reported speaker intervals that are not intervals; they were left out");
        log.info({ intervals: intervals.length }, intervals.length ? "speaker intervals read from the Talk call page" : "no speaker activity seen during the recording");
        return intervals;
      } catch (err) {
        log.warn({ err: errorMessage(err).split("\n")[0] }, "could not read the speaker intervals from the Talk call page");
        return [];
      }
    },
    async leave(page) {
      await page.evaluate(() => (window as any).OCA?.Talk?.signalingKill?.()).catch(() => undefined);
    },
  };
}

/**
 * The join adapter a recording needs: Talk's for a recording Talk asked for (its backend's
 * secret, or the common secret of `talk.allowAll`), none otherwise. Same answer in the embedded
 * server and on a cluster worker.
 */
export function platformAdapter(config: Config, rec: { id: string; backend: string; metadata: Record<string, unknown> }, log: Logger): PlatformAdapter | undefined {
  const talk = rec.metadata.talk as TalkInfo | undefined;
  const secret = config.backends[rec.backend]?.talk?.secret ?? (config.talk.allowAll && rec.backend === ALLOW_ALL_BACKEND ? config.talk.secret : undefined);
  return talk && secret ? talkJoinAdapter(config, secret, talk, log.child({ recordingId: rec.id })) : undefined;
}
