/**
 * The recorder browser's egress proxy: every HTTP request, HTTPS tunnel and WebSocket of one
 * recording's browser goes through it (Chromium `--proxy-server` with loopback not bypassed,
 * Firefox's manual proxy with `allow_hijacking_localhost`), so the browser itself never
 * resolves a name or opens a connection. The proxy (proxy-chain) checks the destination's
 * `host:port` against the recording's origin lists and connects only to addresses its own
 * lookup judged ({@link EgressPolicy.lookup}) — DNS rebinding gains nothing, and requests the
 * page interception cannot see (WebSockets, service workers) are held to the same rules.
 * Listens on 127.0.0.1 on a free port; one per capture session.
 */
import ipaddr from "ipaddr.js";
import { RequestError, Server } from "proxy-chain";
import type { RequestGuard } from "./guard.js";
import type { EgressRefusal } from "./policy.js";

/** A running proxy. {@link EgressProxy.close} is idempotent. */
export class EgressProxy {
  private closed = false;
  private constructor(private readonly server: Server, readonly port: number, private readonly current: { guard: RequestGuard }) {}

  /**
   * Enforces `guard` from now on instead of the one the proxy was started with (a warm capture
   * stack bound to its recording). Connections already open stay open.
   */
  enforce(guard: RequestGuard): void {
    this.current.guard = guard;
  }

  /** `http://127.0.0.1:{port}`, for the browser's proxy setting. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /**
   * Starts a proxy enforcing `guard`. `onRefused(hostPort, refusal)` is told of each refused
   * connection (for the timeline and the log).
   * @throws Error when no loopback port can be bound.
   */
  static async start(guard: RequestGuard, onRefused: (hostPort: string, refusal: EgressRefusal) => void): Promise<EgressProxy> {
    const current = { guard };
    const server = new Server({
      host: "127.0.0.1",
      port: 0,
      verbose: false,
      prepareRequestFunction: ({ hostname, port }) => {
        const host = hostname.replace(/^\[|\]$/g, "").toLowerCase();
        const hp = `${host}:${port}`;
        const { guard } = current;
        const refuse = (refusal: EgressRefusal): never => {
          onRefused(hp, refusal);
          throw new RequestError(`meetrec egress policy: ${refusal.message}`, 403);
        };
        if (!guard.connectionAllowed(hp)) refuse({ rule: "origin", message: `${hp} is not in the backend's allowedOrigins or allowedRequestOrigins` });
        const named = guard.isNamed(hp);
        // Node connects to an address literal without a lookup: judge it here.
        if (ipaddr.isValid(host)) {
          const refusal = guard.policy.checkAddress(host, host, named);
          if (refusal) refuse(refusal);
          return {};
        }
        return { dnsLookup: guard.policy.lookup(() => named, (_h, refusal) => onRefused(hp, refusal)) };
      },
    });
    server.on("requestFailed", () => undefined); // refused and broken connections; reported through onRefused
    await server.listen();
    return new EgressProxy(server, server.port, current);
  }

  /** Closes the proxy and every connection through it. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.server.close(true).catch(() => undefined);
  }
}
