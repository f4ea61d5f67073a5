/**
 * The recorder's browser: Chromium (CDP) or Firefox ESR (WebDriver BiDi) through
 * puppeteer-core, headed on the recording's display, kiosk, window = video size, autoplay on,
 * camera/microphone prompts accepted with fake devices (no real device is ever published),
 * sound into the recording's sink, profile in a private directory.
 */
import { cpSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import puppeteer, { type Browser, type HTTPResponse, type Page } from "puppeteer-core";
import { MeetrecError, errorMessage, withoutPaths } from "../util/errors.js";
import type { Logger } from "../util/log.js";
import { withoutUrl } from "../util/redact.js";
import { profileDirName } from "./orphans.js";

/** Which browser records. */
export type BrowserKind = "chromium" | "firefox";

export interface BrowserOptions {
  kind: BrowserKind;
  executablePath: string;
  /** DISPLAY value, e.g. `:17`. */
  display: string;
  width: number;
  height: number;
  /** Private profile directory (created). */
  profileDir: string;
  /** Extra environment (PulseAudio routing, the recording's marker). */
  env: Record<string, string>;
  /** Accept invalid TLS certificates (self-signed test instances only). */
  acceptInsecureCerts?: boolean;
  /** Port of the egress proxy on 127.0.0.1 every connection of the browser goes through (loopback included). */
  proxyPort: number;
  /** Chromium only: switches after meetrec's own (`capture.chromiumArgs`, checked by the config). */
  extraArgs?: readonly string[];
  /** Hears of a Firefox profile template that could not be built ({@link firefoxTemplate}). */
  log?: Pick<Logger, "info" | "warn">;
}

/**
 * Chromium switches: kiosk, autoplay, fake devices, no calls home, and every connection through
 * the egress proxy (`<-loopback>` removes Chromium's implicit bypass of localhost); fewer
 * processes: no omnibox popup preloaded as WebUI in a renderer of its own (Chromium 156; a
 * kiosk never shows it), no spare renderer kept warm, the network service in the browser
 * process — measured on a 1280×720@30 meeting (`make bench --only flags`): the session's peak
 * PSS 440 → 365 MiB at the same CPU (docs/benchmarks.md); then the operator's `extraArgs`
 * (puppeteer merges every `--disable-features` / `--enable-features` into one list each).
 */
export function chromiumArgs(o: Pick<BrowserOptions, "width" | "height" | "proxyPort" | "extraArgs">, asRoot: boolean): string[] {
  return [
    ...(asRoot ? ["--no-sandbox"] : []),
    `--proxy-server=http://127.0.0.1:${o.proxyPort}`, "--proxy-bypass-list=<-loopback>",
    "--kiosk", `--window-size=${o.width},${o.height}`, "--window-position=0,0", "--start-fullscreen",
    "--autoplay-policy=no-user-gesture-required",
    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-default-apps",
    "--no-first-run", "--no-default-browser-check", "--disable-breakpad", "--disable-crash-reporter",
    "--disable-features=WebRtcHideLocalIpsWithMdns,Translate,MediaRouter,OptimizationHints,AutofillServerCommunication,"
      + "WebUIOmniboxPopup,WebUIOmniboxFullPopup,WebUIOmniboxAimPopup,SpareRendererForSitePerProcess",
    "--enable-features=NetworkServiceInProcess2",
    "--disable-notifications", "--disable-infobars", "--noerrdialogs", "--hide-scrollbars", "--disable-session-crashed-bubble",
    "--disable-dev-shm-usage", "--password-store=basic", "--use-mock-keychain",
    ...(o.extraArgs ?? []),
  ];
}

/** Firefox preferences: autoplay, fake devices without prompts, no telemetry or updates. */
export const FIREFOX_PREFS: Record<string, unknown> = {
  "media.autoplay.default": 0,
  "media.autoplay.blocking_policy": 0,
  "media.navigator.permission.disabled": true,
  "media.navigator.streams.fake": true,
  "media.peerconnection.ice.obfuscate_host_addresses": false,
  "permissions.default.microphone": 1,
  "permissions.default.camera": 1,
  "full-screen-api.allow-trusted-requests-only": false,
  "browser.shell.checkDefaultBrowser": false,
  "app.update.enabled": false,
  "app.update.auto": false,
  "datareporting.policy.dataSubmissionEnabled": false,
  "datareporting.healthreport.uploadEnabled": false,
  "toolkit.telemetry.enabled": false,
  "browser.safebrowsing.malware.enabled": false,
  "browser.safebrowsing.phishing.enabled": false,
  "network.captive-portal-service.enabled": false,
  "network.connectivity-service.enabled": false,
  "extensions.update.enabled": false,
  "browser.tabs.warnOnClose": false,
  "browser.sessionstore.resume_from_crash": false,
};

/**
 * Firefox preferences that send every connection through the egress proxy on `port`: HTTP,
 * TLS and WebSockets, loopback included (`allow_hijacking_localhost`), never directly when the
 * proxy refuses (`failover_direct`).
 */
export function firefoxProxyPrefs(port: number): Record<string, unknown> {
  return {
    "network.proxy.type": 1,
    "network.proxy.http": "127.0.0.1", "network.proxy.http_port": port,
    "network.proxy.ssl": "127.0.0.1", "network.proxy.ssl_port": port,
    "network.proxy.share_proxy_settings": true,
    "network.proxy.no_proxies_on": "",
    "network.proxy.allow_hijacking_localhost": true,
    "network.proxy.failover_direct": false,
    "network.proxy.socks_remote_dns": true,
    "network.dns.disablePrefetch": true,
    "network.prefetch-next": false,
  };
}

/**
 * How long (ms) {@link openPage} waits, after the page loaded, for the browser's answer to the
 * navigation command before it gives the browser up ({@link BrowserUnresponsive}). Measured
 * here (Firefox ESR 153, 65 fresh launches on a local page): answered 50–132 ms after the load,
 * or never.
 */
export const NAVIGATE_ANSWER_GRACE_MS = 2000;

/**
 * The page loaded, but its browser did not answer the command that opened it: Firefox ESR 153
 * over WebDriver BiDi, now and then (measured here: 4 of 23 fresh launches on a local page).
 * Such a browser does not answer later commands to the page either (measured: in 20 recordings
 * of 8 s, the 2 whose navigation went unanswered — and only they — had their page probe hang
 * and the browser relaunched 6 s into the recording), so the caller relaunches it with a fresh
 * profile before recording. `code` is `browser_failed`.
 */
export class BrowserUnresponsive extends MeetrecError {
  constructor(graceMs: number) {
    super("browser_failed", `The browser loaded the meeting page but did not answer the command that opened it within ${graceMs} ms after the load; relaunch the browser`);
  }
}

/**
 * Opens `url` in `page` and resolves with the main document's response (null for a same-document
 * navigation) once the page fired `load`, at most `timeoutMs` (ms).
 *
 * Why not `page.goto` alone: over WebDriver BiDi, Firefox ESR 153 sometimes never answers
 * `browsingContext.navigate` although the page loaded; `page.goto` waits for that answer too, so
 * the start hung until puppeteer's protocol timeout (60 s). Here a navigation wait started before
 * the command sees the load; when it brought a response, the command then has `answerGraceMs`
 * (ms, default {@link NAVIGATE_ANSWER_GRACE_MS}) to be answered, or the browser is given up
 * ({@link BrowserUnresponsive}: it would not answer the page's next commands either). A load
 * without a response (a failed navigation's error page) waits for the command's own answer.
 * `log` hears how late an answer came after the load, and of a late error (without the URL).
 * @throws Error (puppeteer's) when the navigation fails, `TimeoutError` when nothing loaded in
 * `timeoutMs`, {@link BrowserUnresponsive} when the load came but the answer did not.
 */
export async function openPage(page: Page, url: string, timeoutMs: number, log?: Pick<Logger, "debug">, answerGraceMs = NAVIGATE_ANSWER_GRACE_MS): Promise<HTTPResponse | null> {
  let loadedAt: number | undefined;
  const loaded = page.waitForNavigation({ waitUntil: "load", timeout: timeoutMs }).then((r) => { loadedAt = Date.now(); return r; });
  const going = page.goto(url, { waitUntil: "load", timeout: timeoutMs }).then((r) => {
    if (loadedAt !== undefined) log?.debug({ afterLoadMs: Date.now() - loadedAt }, "the navigation command was answered after the page's load");
    return r;
  });
  // Whichever loses is dropped: its late rejection (a protocol timeout) must not go unhandled.
  loaded.catch(() => undefined);
  going.catch((err: unknown) => {
    if (loadedAt !== undefined) log?.debug({ err: withoutUrl(errorMessage(err), url) }, "the navigation command failed after the page had loaded");
  });
  const first = await Promise.race([going, loaded]);
  // A load without a response is a failed navigation's error page (or a same-document one):
  // then the command's own answer says what happened.
  if (first === null) return await going;
  // An answer already in (or coming within the grace) wins this race at once.
  let timer: NodeJS.Timeout | undefined;
  const gaveUp = new Promise<"late">((resolve) => { timer = setTimeout(() => resolve("late"), answerGraceMs); });
  try {
    if ((await Promise.race([going.then(() => "answered", () => "answered"), gaveUp])) === "late") throw new BrowserUnresponsive(answerGraceMs);
  } finally {
    clearTimeout(timer);
  }
  return first;
}

/** Firefox profile templates by executable path, one build each per meetrec process ({@link firefoxTemplate}). */
const templates = new Map<string, Promise<string | undefined>>();

/**
 * What a profile takes from the template: Firefox's startup cache, and the version stamp without
 * which Firefox takes the profile for one of another version and throws that cache away. Only
 * caches: no preference, window state or session of the template's run.
 */
const TEMPLATE_FILES = ["compatibility.ini", "startupCache"];

/**
 * A Firefox profile directory that Firefox started in once and that never showed a page, whose
 * caches ({@link TEMPLATE_FILES}) {@link RecorderBrowser.launch} copies into each recording's
 * fresh profile: from an empty profile Firefox builds its startup cache again at every start.
 * Measured here (ESR 153, 2 cores): 4.2–4.6 s and ~6 core-seconds to a usable browser from an
 * empty profile, 2.6–3.0 s and ~3.7–4.1 core-seconds with the caches (19 MiB; the startup
 * cache alone, without the version stamp, gained nothing). Built headless on `about:blank`, its
 * proxy a closed port on loopback (no connection leaves), at the first Firefox launch of this
 * process (~5 s, once) and removed when the process exits (a killed meetrec's is removed at the
 * next start, `removeLeftoverProfiles`). A build that fails is logged and launches go on from
 * empty profiles. Never throws.
 */
function firefoxTemplate(executablePath: string, log?: Pick<Logger, "info" | "warn">): Promise<string | undefined> {
  let built = templates.get(executablePath);
  if (!built) {
    built = buildTemplate(executablePath, join(tmpdir(), profileDirName("firefox-template", templates.size)), log);
    templates.set(executablePath, built);
  }
  return built;
}

async function buildTemplate(executablePath: string, dir: string, log?: Pick<Logger, "info" | "warn">): Promise<string | undefined> {
  const began = Date.now();
  process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
  try {
    const browser = await puppeteer.launch({
      browser: "firefox", executablePath, headless: true, userDataDir: dir,
      extraPrefsFirefox: { ...FIREFOX_PREFS, ...firefoxProxyPrefs(1) },
    });
    await browser.close();
    log?.info({ ms: Date.now() - began }, "Firefox profile template built (once per process)");
    return dir;
  } catch (err) {
    log?.warn({ err: withoutPaths(errorMessage(err).split("\n")[0], [executablePath, dir]) }, "cannot build a Firefox profile template; Firefox starts from empty profiles");
    rmSync(dir, { recursive: true, force: true });
    return undefined;
  }
}

/** A launched browser and its one page. */
export class RecorderBrowser {
  private closed = false;
  private constructor(readonly kind: BrowserKind, readonly browser: Browser, readonly page: Page) {}

  /** PID of the browser's main process. */
  get pid(): number | undefined {
    return this.browser.process()?.pid;
  }

  /**
   * Launches the browser and returns it with one blank page sized to the window.
   * @throws MeetrecError `browser_failed` when the browser does not start.
   */
  static async launch(o: BrowserOptions): Promise<RecorderBrowser> {
    mkdirSync(o.profileDir, { recursive: true });
    const env = { ...process.env, DISPLAY: o.display, ...o.env } as Record<string, string>;
    let browser: Browser;
    try {
      if (o.kind === "chromium") {
        browser = await puppeteer.launch({
          browser: "chrome",
          executablePath: o.executablePath,
          headless: false,
          userDataDir: o.profileDir,
          defaultViewport: null,
          args: chromiumArgs(o, process.getuid?.() === 0),
          ignoreDefaultArgs: ["--enable-automation", "--mute-audio"],
          env,
          protocolTimeout: 60000,
          acceptInsecureCerts: o.acceptInsecureCerts ?? false,
        });
      } else {
        const template = await firefoxTemplate(o.executablePath, o.log);
        if (template) for (const f of TEMPLATE_FILES) cpSync(join(template, f), join(o.profileDir, f), { recursive: true });
        browser = await puppeteer.launch({
          browser: "firefox",
          executablePath: o.executablePath,
          headless: false,
          userDataDir: o.profileDir,
          defaultViewport: null,
          args: ["--kiosk", `--width=${o.width}`, `--height=${o.height}`],
          extraPrefsFirefox: { ...FIREFOX_PREFS, ...firefoxProxyPrefs(o.proxyPort) },
          env,
          protocolTimeout: 60000,
          acceptInsecureCerts: o.acceptInsecureCerts ?? false,
        });
      }
    } catch (err) {
      // The message can become a recording's error.message: the config key, not the executable's
      // or the profile's path (the cause, logged by the session's owner, has them).
      const key = o.kind === "chromium" ? "capture.chromiumPath" : "capture.firefoxPath";
      const why = withoutPaths((err as Error).message.split("\n")[0], [o.executablePath, o.profileDir]);
      throw new MeetrecError("browser_failed", `Cannot start ${o.kind} (${key}): ${why}; check that it is installed and ${key} names it`, { cause: err });
    }
    try {
      const pages = await browser.pages();
      const page = pages[0] ?? (await browser.newPage());
      // A modal dialog (alert, beforeunload) would block the page and the watchdog's probes.
      page.on("dialog", (d) => void d.dismiss().catch(() => undefined));
      return new RecorderBrowser(o.kind, browser, page);
    } catch (err) {
      await browser.close().catch(() => undefined);
      throw new MeetrecError("browser_failed", `${o.kind} started but has no usable page: ${withoutPaths((err as Error).message.split("\n")[0], [o.executablePath, o.profileDir])}`, { cause: err });
    }
  }

  /** Kills the browser at once (SIGKILL to its process group), e.g. when its page hangs. */
  kill(): void {
    const proc = this.browser.process();
    if (!proc?.pid) return;
    try {
      process.kill(-proc.pid, "SIGKILL"); // puppeteer starts browsers as process-group leaders
    } catch {
      proc.kill("SIGKILL");
    }
  }

  /** Closes the browser (kills it if it does not close in 5 s). Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const proc = this.browser.process();
    await Promise.race([this.browser.close().catch(() => undefined), new Promise((r) => setTimeout(r, 5000).unref())]);
    if (proc && proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
  }
}
