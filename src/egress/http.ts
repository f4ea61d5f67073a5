/**
 * The egress policy for meetrec's own HTTP requests (Talk callbacks and uploads, webhooks):
 * an undici dispatcher whose connections resolve through {@link EgressPolicy.lookup}, so the
 * address judged is the address connected to. Redirects are never followed by these callers.
 */
import ipaddr from "ipaddr.js";
import { Agent } from "undici";
import { redactUrl } from "../util/redact.js";
import { egressError, type EgressPolicy } from "./policy.js";

const agents = new WeakMap<EgressPolicy, Map<string, Agent>>();

/**
 * The dispatcher for a request to `url` under `policy`. `named`: the operator named this
 * destination (a configured Talk backend, a webhook's URL): allowed on any address.
 * `skipVerify`: accept any TLS certificate (self-signed test instances only).
 * @throws MeetrecError `egress_refused` when `url`'s host is an address literal the policy refuses
 * (a name is judged when the connection resolves it; the request then fails with that error's message).
 */
export function egressDispatcher(policy: EgressPolicy, url: string, opts: { named: boolean; skipVerify?: boolean }): Agent {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, "");
  if (ipaddr.isValid(host)) {
    const refusal = policy.checkAddress(host, host, opts.named);
    if (refusal) throw egressError(redactUrl(url), refusal);
  }
  const key = `${opts.named ? 1 : 0}${opts.skipVerify ? 1 : 0}`;
  let byKey = agents.get(policy);
  if (!byKey) agents.set(policy, (byKey = new Map()));
  let agent = byKey.get(key);
  if (!agent) {
    agent = new Agent({ connect: { lookup: policy.lookup(() => opts.named), ...(opts.skipVerify ? { rejectUnauthorized: false } : {}) } });
    byKey.set(key, agent);
  }
  return agent;
}
