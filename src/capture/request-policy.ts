/**
 * Holds a recorder page to its {@link RequestGuard} where the traffic is: every request the page
 * makes is intercepted (Chromium over CDP `Fetch`, Firefox over WebDriver BiDi network
 * interception, both through puppeteer's request interception) and judged before it leaves —
 * top-level navigations (the meeting URL, redirects, links, scripted `location` changes) by the
 * navigation rules, everything else by the request rules. Refused requests are aborted and
 * reported. The egress proxy behind the browser judges the addresses of what is let through.
 */
import type { HTTPRequest, Page } from "puppeteer-core";
import type { EgressRefusal, RequestGuard } from "../egress/index.js";
import { redactUrl } from "../util/redact.js";

/** A request the guard refused. `url` is redacted (no query, fragment or user info). */
export interface BlockedRequest {
  url: string;
  /** A navigation of the top-level page (the recording cannot go on), else a subresource/frame. */
  navigation: boolean;
  refusal: EgressRefusal;
}

function isTopLevelNavigation(page: Page, req: HTTPRequest): boolean {
  if (!req.isNavigationRequest()) return false;
  const frame = req.frame();
  return frame === null || frame === page.mainFrame() || frame.parentFrame() === null;
}

/**
 * Turns on request interception for `page` and judges every request with `guard`;
 * `onBlocked` hears of each refusal after the request was aborted.
 */
export async function enforceRequestPolicy(page: Page, guard: RequestGuard, onBlocked: (b: BlockedRequest) => void): Promise<void> {
  await page.setRequestInterception(true);
  page.on("request", (req) => {
    void (async () => {
      if (req.isInterceptResolutionHandled()) return;
      const url = req.url();
      const navigation = isTopLevelNavigation(page, req);
      const refusal = navigation ? await guard.navigationRefusal(url) : guard.requestRefusal(url);
      if (refusal) {
        await req.abort("blockedbyclient");
        onBlocked({ url: redactUrl(url), navigation, refusal });
      } else {
        await req.continue();
      }
    })().catch(() => undefined); // the request was cancelled or the page closed meanwhile
  });
}
