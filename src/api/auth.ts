/**
 * Bearer API keys (RFC 6750 §2.1). Each backend has its own key; the key identifies the backend.
 * Keys are compared in constant time over their SHA-256 digests.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { Config } from "../config/index.js";

const digest = (s: string) => createHash("sha256").update(s).digest();

/** Finds backends by key. */
export class KeyRing {
  private readonly keys: { backend: string; digest: Buffer }[];

  constructor(cfg: Config) {
    this.keys = Object.entries(cfg.backends).flatMap(([backend, b]) => (b.apiKey ? [{ backend, digest: digest(b.apiKey) }] : []));
  }

  /** The backend name for an `Authorization` header value, or undefined. Checks every key (no early exit). */
  backendFor(header: string | undefined): string | undefined {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
    if (!m) return undefined;
    const d = digest(m[1]);
    let found: string | undefined;
    for (const k of this.keys) if (timingSafeEqual(k.digest, d)) found ??= k.backend;
    return found;
  }
}
