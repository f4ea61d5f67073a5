/**
 * `openPage` (src/capture/browser.ts): the page's load is seen by a navigation wait — Firefox
 * over BiDi sometimes never answers `browsingContext.navigate` although the page loaded, and
 * such a browser is given up after a grace (`BrowserUnresponsive`) instead of hanging the start
 * for puppeteer's 60 s protocol timeout; a load without a response (an error page) still waits
 * for the command's own answer.
 * The page here is a double of puppeteer's `Page` with just `goto` and `waitForNavigation`; the
 * real browsers run through it in every recording test.
 */
import type { HTTPResponse, Page } from "puppeteer-core";
import { describe, expect, test } from "vitest";
import { BrowserUnresponsive, openPage } from "../../src/capture/browser.js";

const response = (status: number) => ({ status: () => status }) as unknown as HTTPResponse;

/** A page whose `goto` settles with `goto` (never when undefined) and whose navigation wait resolves with `loaded`. */
function fakePage(goto: (() => Promise<HTTPResponse | null>) | undefined, loaded: () => Promise<HTTPResponse | null>): Page {
  return {
    goto: () => (goto ? goto() : new Promise(() => undefined)),
    waitForNavigation: loaded,
  } as unknown as Page;
}

const later = <T>(ms: number, f: () => T) => new Promise<T>((resolve, reject) => setTimeout(() => { try { resolve(f()); } catch (e) { reject(e); } }, ms));

describe("openPage", () => {
  test("the page loaded but the navigation command is never answered: the browser is given up after the grace, not after the protocol timeout", async () => {
    const page = fakePage(undefined, () => later(20, () => response(200)));
    const began = Date.now();
    const err = await openPage(page, "http://127.0.0.1:1/?token=s3cret", 5000, undefined, 100).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BrowserUnresponsive);
    expect((err as BrowserUnresponsive).code).toBe("browser_failed");
    expect((err as Error).message).not.toContain("s3cret");
    expect(Date.now() - began).toBeGreaterThanOrEqual(115);
    expect(Date.now() - began).toBeLessThan(1000);
  });

  test("an answer that comes after the load but within the grace: resolves with the load's response, the lateness logged", async () => {
    const lines: unknown[] = [];
    const page = fakePage(() => later(70, () => response(200)), () => later(10, () => response(200)));
    expect((await openPage(page, "http://127.0.0.1:1/", 1000, { debug: (o: unknown) => void lines.push(o) } as never, 500))?.status()).toBe(200);
    expect(lines).toHaveLength(1);
    expect((lines[0] as { afterLoadMs: number }).afterLoadMs).toBeGreaterThanOrEqual(40);
  });

  test("an answer that fails after the load (within the grace) is logged, without the URL, and changes nothing", async () => {
    const lines: unknown[] = [];
    const page = fakePage(() => later(60, () => { throw new Error("browsingContext.navigate timed out at http://127.0.0.1:1/?token=s3cret"); }), () => later(10, () => response(200)));
    expect((await openPage(page, "http://127.0.0.1:1/?token=s3cret", 1000, { debug: (o: unknown) => void lines.push(o) } as never))?.status()).toBe(200);
    await later(80, () => undefined);
    expect(lines).toHaveLength(1);
    expect(JSON.stringify(lines)).not.toContain("s3cret");
  });

  test("a load without a response (a failed navigation's error page) waits for the command, whose error is thrown", async () => {
    const page = fakePage(() => later(50, () => { throw new Error("net::ERR_CONNECTION_REFUSED"); }), () => later(10, () => null));
    await expect(openPage(page, "http://127.0.0.1:1/", 1000)).rejects.toThrow("ERR_CONNECTION_REFUSED");
  });

  test("the command answered first: its response (an HTTP error status is the caller's to judge)", async () => {
    const page = fakePage(() => later(10, () => response(404)), () => later(50, () => response(404)));
    expect((await openPage(page, "http://127.0.0.1:1/", 1000))?.status()).toBe(404);
  });
});
