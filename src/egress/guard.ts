/**
 * Where one recording's browser may go: the backend's origin lists plus the egress policy.
 *
 * - `allowedOrigins` governs **navigations** of the top-level page (the meeting URL, `goto`
 *   steps, redirects, links, `location = …`); empty = any origin the egress policy allows.
 * - `allowedRequestOrigins` governs everything else the page loads — frames, scripts, XHR /
 *   fetch, WebSockets, media: `public` (the default) = any origin the egress policy allows; the
 *   origins of allowed navigations are always allowed too.
 * - Every connection, of either kind, must also pass the {@link EgressPolicy} on its resolved
 *   addresses, unless its origin is one the operator named (either list, the Talk backend's
 *   URL, a signaling server), which is allowed even on a private or loopback address.
 */
import type { Config } from "../config/index.js";
import { EgressPolicy, hostPort, type EgressRefusal } from "./policy.js";

/** What a recording's browser may reach (see module doc); built by {@link browserEgressFor}. */
export interface BrowserEgress {
  /** Origins (`https://meet.example.com`) navigations may go to; empty = any the policy allows. */
  navigation: string[];
  /** Origins requests may go to, or `public` = any the policy allows. */
  requests: string[];
  /** `host:port` of every origin the operator named for this backend. */
  named: string[];
  /** `egress.allow`. */
  allow: string[];
}

/** Schemes a top-level page may show. */
const NAV_SCHEMES = new Set(["http:", "https:"]);
/** Schemes a page may load from (data: and blob: never leave the browser). */
const REQUEST_SCHEMES = new Set(["http:", "https:", "ws:", "wss:", "data:", "blob:"]);

/**
 * The browser egress of `backend`'s recordings: its `allowedOrigins`, `allowedRequestOrigins`,
 * the Talk backend's URL and the signaling servers as named origins, and `egress.allow`.
 */
export function browserEgressFor(cfg: Config, backend: string): BrowserEgress {
  const b = cfg.backends[backend];
  const origin = (u: string) => new URL(u).origin;
  const navigation = (b?.allowedOrigins ?? []).map(origin);
  const requests = (b?.allowedRequestOrigins ?? ["public"]).map((o) => (o === "public" ? o : origin(o)));
  const named = [
    ...navigation, ...requests.filter((o) => o !== "public"),
    ...(b?.talk && backend !== "talk-any" ? [b.talk.url] : []),
    ...(b?.talk ? cfg.talk.signaling.servers.map((s) => s.url) : []),
  ].map((u) => hostPort(u));
  return { navigation, requests, named: [...new Set(named)], allow: cfg.egress.allow };
}

/** One recording's judge of URLs and connections (see module doc). */
export class RequestGuard {
  readonly policy: EgressPolicy;
  private readonly named: Set<string>;
  private readonly navigation: Set<string>;
  /** `host:port` of the request origins and the navigation origins, with a request origin list; none = any. */
  private readonly connections?: Set<string>;
  /** `host:port` of navigations let through (their subresources and connections are allowed). */
  private readonly approved = new Set<string>();

  constructor(readonly egress: BrowserEgress) {
    this.policy = new EgressPolicy(egress.allow);
    this.named = new Set(egress.named);
    this.navigation = new Set(egress.navigation);
    this.connections = egress.requests.includes("public") ? undefined : new Set([...egress.requests, ...egress.navigation].map((o) => hostPort(o)));
  }

  /** Whether `host:port` is an origin the operator named (allowed on any address). */
  isNamed(hp: string): boolean {
    return this.named.has(hp.toLowerCase());
  }

  /**
   * Judges a top-level navigation to `url` (origin list, then the egress policy on its
   * resolved addresses). On success the origin is remembered as approved.
   */
  async navigationRefusal(url: string): Promise<EgressRefusal | undefined> {
    if (url === "about:blank") return undefined;
    let u: URL;
    try { u = new URL(url); } catch { return { rule: "scheme", message: "The page tried to open a URL that does not parse" }; }
    if (!NAV_SCHEMES.has(u.protocol)) return { rule: "scheme", message: `The recorder opens only http and https pages, not ${u.protocol}` };
    if (this.navigation.size > 0 && !this.navigation.has(u.origin)) {
      return { rule: "origin", message: `${u.origin} is not in the backend's allowedOrigins` };
    }
    const hp = hostPort(u);
    const { refusal } = await this.policy.check(u.hostname, this.isNamed(hp));
    if (!refusal) this.approved.add(hp);
    return refusal;
  }

  /**
   * Judges a subresource / frame / WebSocket URL by scheme and the request origin list (the
   * addresses are judged where the connection is made, by the proxy).
   */
  requestRefusal(url: string): EgressRefusal | undefined {
    let u: URL;
    try { u = new URL(url); } catch { return { rule: "scheme", message: "The page requested a URL that does not parse" }; }
    if (!REQUEST_SCHEMES.has(u.protocol)) return { rule: "scheme", message: `The recorder's pages may not load ${u.protocol} URLs` };
    if (u.protocol === "data:" || u.protocol === "blob:") return undefined;
    if (!this.connectionAllowed(hostPort(u))) return { rule: "origin", message: `${u.origin} is not in the backend's allowedRequestOrigins` };
    return undefined;
  }

  /**
   * Whether a connection to `host:port` fits the origin lists (before its addresses are
   * judged): with a request origin list, only its origins, the navigation origins and
   * approved navigations; otherwise any.
   */
  connectionAllowed(hp: string): boolean {
    if (!this.connections) return true;
    const h = hp.toLowerCase();
    return this.approved.has(h) || this.connections.has(h);
  }
}
