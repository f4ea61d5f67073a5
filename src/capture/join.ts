/**
 * The join recipe: the meeting URL plus declarative steps run in order, each with a timeout.
 */
import type { Page } from "puppeteer-core";
import { z } from "zod";
import { MeetrecError } from "../util/errors.js";
import { BrowserUnresponsive, openPage } from "./browser.js";

const selector = z.string().min(1).max(1000);
const timeout = z.number().int().min(1).max(600000).optional();

/**
 * One join step. Exactly one action key per step, plus an optional `timeoutMs` (1–600000 ms,
 * default `capture.joinStepTimeoutMs`): `{click: sel}`, `{fill: {selector, text}}`,
 * `{press: key}` (a puppeteer KeyInput such as `"Enter"`), `{waitFor: sel}` (until visible),
 * `{wait: ms}`, `{goto: url}`. A `wait` step accepts `timeoutMs` like every step, but it
 * bounds nothing more: the pause always lasts `wait` ms (or until the join is aborted).
 */
export const JoinStep = z.union([
  z.strictObject({ click: selector, timeoutMs: timeout }),
  z.strictObject({ fill: z.strictObject({ selector, text: z.string().max(10000) }), timeoutMs: timeout }),
  z.strictObject({ press: z.string().min(1).max(40), timeoutMs: timeout }),
  z.strictObject({ waitFor: selector, timeoutMs: timeout }),
  z.strictObject({ wait: z.number().int().min(0).max(600000), timeoutMs: timeout }),
  z.strictObject({ goto: z.url({ protocol: /^https?$/, error: "must be an http or https URL" }), timeoutMs: timeout }),
]);
export type JoinStep = z.infer<typeof JoinStep>;

/** A list of at most 100 join steps. */
export const JoinSteps = z.array(JoinStep).max(100);

/** Describes a step for messages: `click "#start"`. */
export function describeStep(step: JoinStep): string {
  if ("click" in step) return `click ${JSON.stringify(step.click)}`;
  if ("fill" in step) return `fill ${JSON.stringify(step.fill.selector)}`;
  if ("press" in step) return `press ${JSON.stringify(step.press)}`;
  if ("waitFor" in step) return `waitFor ${JSON.stringify(step.waitFor)}`;
  if ("wait" in step) return `wait ${step.wait} ms`;
  return `goto ${step.goto}`;
}

/** Origins a step navigates to (for the allowed-origin check). */
export function stepOrigins(steps: JoinStep[]): string[] {
  return steps.filter((s): s is Extract<JoinStep, { goto: string }> => "goto" in s).map((s) => new URL(s.goto).origin);
}

async function runStep(page: Page, step: JoinStep, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  if ("wait" in step) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, step.wait);
      signal?.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
    });
  } else if ("click" in step) {
    const el = await page.waitForSelector(step.click, { visible: true, timeout: timeoutMs });
    await el!.click();
  } else if ("fill" in step) {
    const el = await page.waitForSelector(step.fill.selector, { visible: true, timeout: timeoutMs });
    await el!.click({ count: 3 });
    await el!.type(step.fill.text);
  } else if ("press" in step) {
    await page.keyboard.press(step.press as Parameters<Page["keyboard"]["press"]>[0]);
  } else if ("waitFor" in step) {
    await page.waitForSelector(step.waitFor, { visible: true, timeout: timeoutMs });
  } else {
    await openPage(page, step.goto, timeoutMs);
  }
}

/**
 * Runs `steps` in order on `page`. `defaultTimeoutMs` applies to steps without `timeoutMs`.
 * @throws MeetrecError `join_failed` naming the step index (0-based) and what it did;
 * {@link BrowserUnresponsive} as it comes from a `goto` step.
 */
export async function runJoinSteps(page: Page, steps: JoinStep[], defaultTimeoutMs: number, signal?: AbortSignal): Promise<void> {
  for (const [index, step] of steps.entries()) {
    if (signal?.aborted) throw new MeetrecError("join_failed", `Join aborted before step ${index} (${describeStep(step)})`);
    const t = "timeoutMs" in step && step.timeoutMs ? step.timeoutMs : defaultTimeoutMs;
    try {
      await runStep(page, step, t, signal);
    } catch (err) {
      if (err instanceof BrowserUnresponsive) throw err; // the browser's fault, not the step's: the session relaunches it
      const why = (err as Error).name === "TimeoutError" ? `timed out after ${t} ms` : (err as Error).message.split("\n")[0];
      throw new MeetrecError("join_failed", `Join step ${index} (${describeStep(step)}) failed: ${why}. Check the selector against the meeting page, or raise its timeoutMs.`, { details: { step: index }, cause: err });
    }
  }
}
