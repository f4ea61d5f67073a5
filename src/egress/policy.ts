/**
 * The egress policy: which network addresses meetrec's outgoing traffic may reach — the
 * recorder's browser (every request, through {@link EgressProxy}) and the deliveries (Talk
 * callbacks and uploads, webhooks).
 *
 * After DNS resolution, an address in one of these classes is refused by default: loopback,
 * unspecified, link-local, cloud metadata, multicast, broadcast, reserved, and private ranges
 * (RFC 1918, carrier-grade NAT, unique-local IPv6). IPv4-mapped / NAT64 / 6to4 IPv6 forms are
 * judged by the IPv4 address they carry. Two things waive the rules for a destination:
 * - `egress.allow` in the configuration: CIDRs (`10.0.0.0/8`), addresses, host names
 *   (`meet.internal`) or `*.suffix` wildcards;
 * - a **named** origin: one the operator wrote into the configuration for this purpose (a
 *   backend's `allowedOrigins` / `allowedRequestOrigins`, a Talk backend's URL, a signaling
 *   server, a webhook's own URL). The caller passes those.
 * Every check resolves again (no cache of our own), and the proxy and the HTTP agent connect to
 * exactly the addresses that were checked, so a DNS answer that changes (rebinding) is judged
 * each time it is used.
 */
import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import ipaddr from "ipaddr.js";
import { MeetrecError } from "../util/errors.js";

/** Why an address is refused: the rule's stable name. */
export type EgressRule = "origin" | "loopback" | "unspecified" | "link_local" | "cloud_metadata" | "multicast" | "broadcast" | "reserved" | "private" | "scheme";

/** A refusal: the rule and a sentence for people. */
export interface EgressRefusal {
  rule: EgressRule;
  message: string;
}

/** Addresses of cloud instance-metadata services (AWS, GCP, Azure, OpenStack; Alibaba; AWS IPv6). */
const METADATA = new Set(["169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254"]);

type Addr = ipaddr.IPv4 | ipaddr.IPv6;

/** The IPv4 address an IPv6 address carries (mapped, NAT64 well-known prefix, 6to4), if any. */
function embeddedV4(a: ipaddr.IPv6): ipaddr.IPv4 | undefined {
  if (a.isIPv4MappedAddress()) return a.toIPv4Address();
  const range = a.range();
  const p = a.parts;
  if (range === "rfc6145") return new ipaddr.IPv4([p[6] >> 8, p[6] & 255, p[7] >> 8, p[7] & 255]);
  if (range === "rfc6052") return new ipaddr.IPv4([p[6] >> 8, p[6] & 255, p[7] >> 8, p[7] & 255]);
  if (range === "6to4") return new ipaddr.IPv4([p[1] >> 8, p[1] & 255, p[2] >> 8, p[2] & 255]);
  return undefined;
}

/** The rule an address breaks by default, or undefined for a public unicast address. */
export function addressRule(address: string): EgressRule | undefined {
  let a: Addr;
  try {
    a = ipaddr.parse(address.replace(/^\[|\]$/g, "").replace(/%.*$/, ""));
  } catch {
    return "reserved";
  }
  if (a.kind() === "ipv6") {
    const v4 = embeddedV4(a as ipaddr.IPv6);
    if (v4) return addressRule(v4.toString());
  }
  if (METADATA.has(a.toString())) return "cloud_metadata";
  switch (a.range()) {
    case "unicast": return undefined;
    case "loopback": return "loopback";
    case "unspecified": return "unspecified";
    case "linkLocal": return "link_local";
    case "multicast": return "multicast";
    case "broadcast": return "broadcast";
    case "private": case "carrierGradeNat": case "uniqueLocal": return "private";
    default: return "reserved"; // documentation, benchmarking, teredo, site-local, 240/4, …
  }
}

const RULE_TEXT: Record<EgressRule, string> = {
  loopback: "a loopback address (this machine)",
  unspecified: "an unspecified address",
  link_local: "a link-local address",
  cloud_metadata: "a cloud metadata address",
  multicast: "a multicast address",
  broadcast: "a broadcast address",
  reserved: "a reserved address",
  private: "a private address",
  scheme: "a scheme the recorder does not open",
  origin: "an origin the backend does not list",
};

/** One `egress.allow` entry, parsed. */
type AllowEntry = { cidr: [Addr, number] } | { host: string } | { suffix: string };

function parseAllow(entry: string): AllowEntry {
  const e = entry.trim().toLowerCase();
  if (e.startsWith("*.")) return { suffix: e.slice(1) };
  if (e.includes("/")) return { cidr: ipaddr.parseCIDR(e) };
  if (ipaddr.isValid(e)) {
    const a = ipaddr.parse(e);
    return { cidr: [a, a.kind() === "ipv4" ? 32 : 128] };
  }
  return { host: e };
}

/** Whether `entry` is a valid `egress.allow` entry (for config validation). */
export function isAllowEntry(entry: string): boolean {
  const e = entry.trim().toLowerCase();
  if (e.startsWith("*.")) return /^\*\.[a-z0-9.-]+$/.test(e);
  if (e.includes("/")) return ipaddr.isValidCIDR(e);
  return ipaddr.isValid(e) || /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/.test(e);
}

/** `host:port` of an origin or URL, port made explicit (`https://a` → `a:443`), host lowercased, IPv6 unbracketed. */
export function hostPort(url: string | URL): string {
  const u = typeof url === "string" ? new URL(url) : url;
  const port = u.port || ({ "http:": "80", "ws:": "80", "https:": "443", "wss:": "443" } as Record<string, string>)[u.protocol] || "";
  return `${u.hostname.replace(/^\[|\]$/g, "").toLowerCase()}:${port}`;
}

/**
 * The error for a refused destination (details: `rule`, `url` — redacted by the caller):
 * `origin_not_allowed` for the origin lists, `egress_refused` for the address rules.
 */
export function egressError(url: string, refusal: EgressRefusal): MeetrecError {
  if (refusal.rule === "origin") {
    return new MeetrecError("origin_not_allowed", `${refusal.message}: the recorder was stopped from opening ${url}. Add the origin to the backend's list if the recorder should go there.`, { details: { rule: refusal.rule, url } });
  }
  return new MeetrecError("egress_refused", `${refusal.message}: the recorder was stopped from opening ${url}. Name the origin in the backend's allowedOrigins or allowedRequestOrigins, or add it to egress.allow, if the recorder should reach it.`, { details: { rule: refusal.rule, url } });
}

/** See module doc. Immutable; one per configuration. */
export class EgressPolicy {
  private readonly allow: AllowEntry[];

  /** @throws Error when an `egress.allow` entry is not a CIDR, address, host name or `*.suffix` (validated in the config schema first). */
  constructor(allow: readonly string[] = []) {
    this.allow = allow.map(parseAllow);
  }

  private allowed(host: string, address?: string): boolean {
    const h = host.toLowerCase().replace(/^\[|\]$/g, "");
    for (const e of this.allow) {
      if ("host" in e && e.host === h) return true;
      if ("suffix" in e && (h.endsWith(e.suffix) || h === e.suffix.slice(1))) return true;
      if ("cidr" in e && address) {
        try {
          let a: Addr = ipaddr.parse(address);
          if (a.kind() === "ipv6" && (a as ipaddr.IPv6).isIPv4MappedAddress()) a = (a as ipaddr.IPv6).toIPv4Address();
          if (a.kind() === e.cidr[0].kind() && a.match(e.cidr)) return true;
        } catch { /* not an address */ }
      }
    }
    return false;
  }

  /**
   * Judges one resolved `address` of `host`. `named`: the destination is one the operator
   * named for this purpose (then everything is allowed).
   */
  checkAddress(host: string, address: string, named = false): EgressRefusal | undefined {
    if (named) return undefined;
    const rule = addressRule(address);
    if (!rule || this.allowed(host, address)) return undefined;
    const shown = host.replace(/^\[|\]$/g, "") === address ? address : `${host} (${address})`;
    return { rule, message: `${shown} is ${RULE_TEXT[rule]}, which the egress policy refuses (rule ${rule})` };
  }

  /**
   * Resolves `host` (every address) and judges each; one refused address refuses the host.
   * Returns the addresses on success. A host that does not resolve is not judged (`[]`): the
   * connection then fails on its own. A named host is not resolved at all (`[]`).
   */
  async check(host: string, named = false): Promise<{ addresses: LookupAddress[]; refusal?: EgressRefusal }> {
    const bare = host.replace(/^\[|\]$/g, "").toLowerCase();
    if (named) return { addresses: [] };
    // RFC 6761 §6.3: localhost names are loopback wherever they are resolved (browsers do so themselves).
    if (bare === "localhost" || bare.endsWith(".localhost")) {
      const refusal = this.checkAddress(bare, "127.0.0.1");
      if (refusal) return { addresses: [], refusal };
    }
    let addresses: LookupAddress[];
    if (ipaddr.isValid(bare)) addresses = [{ address: bare, family: bare.includes(":") ? 6 : 4 }];
    else {
      addresses = await new Promise<LookupAddress[]>((resolve) => dnsLookup(bare, { all: true, verbatim: true }, (err, list) => resolve(err ? [] : list)));
    }
    for (const a of addresses) {
      const refusal = this.checkAddress(bare, a.address, named);
      if (refusal) return { addresses, refusal };
    }
    return { addresses };
  }

  /**
   * A `dns.lookup`-compatible function that resolves, judges and hands on only checked
   * addresses, for HTTP agents and proxies (they connect to what it returns, so the answer
   * judged is the answer used). A refusal fails the lookup with an error whose `code` is
   * `EGRESS_REFUSED` and whose `refusal` holds the rule.
   */
  lookup(named: (host: string) => boolean, onRefused?: (host: string, refusal: EgressRefusal) => void): typeof dnsLookup {
    const fn = (hostname: string, options: unknown, callback?: unknown) => {
      const cb = (typeof options === "function" ? options : callback) as (err: NodeJS.ErrnoException | null, address?: string | LookupAddress[], family?: number) => void;
      const opts = (typeof options === "object" && options !== null ? options : typeof options === "number" ? { family: options } : {}) as { all?: boolean; family?: number | string };
      if (named(hostname)) return dnsLookup(hostname, opts as never, cb as never);
      void this.check(hostname).then(({ addresses, refusal }) => {
        if (refusal) {
          onRefused?.(hostname, refusal);
          const err = Object.assign(new Error(refusal.message), { code: "EGRESS_REFUSED", refusal }) as NodeJS.ErrnoException;
          return cb(err);
        }
        const family = opts.family === "IPv4" ? 4 : opts.family === "IPv6" ? 6 : opts.family;
        const list = family === 4 || family === 6 ? addresses.filter((a) => a.family === family) : addresses;
        if (list.length === 0) return cb(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: "ENOTFOUND", hostname }) as NodeJS.ErrnoException);
        if (opts.all) return cb(null, list);
        cb(null, list[0].address, list[0].family);
      });
    };
    return fn as unknown as typeof dnsLookup;
  }
}
