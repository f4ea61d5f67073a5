/**
 * The HMACs of Nextcloud Talk's recording protocol (shared/protocols/nextcloud-talk.md §1–3):
 * lowercase hex HMAC-SHA256(key = secret, message = random ‖ data), compared in constant time.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/** hex HMAC-SHA256(secret, random ‖ data). */
export function talkChecksum(secret: string, random: string, data: string | Buffer = ""): string {
  return createHmac("sha256", secret).update(random).update(data).digest("hex");
}

/** Constant-time check of a received checksum. */
export function checksumMatches(secret: string, random: string, data: string | Buffer, received: string): boolean {
  const want = Buffer.from(talkChecksum(secret, random, data), "utf8");
  const got = Buffer.from(received.toLowerCase(), "utf8");
  return want.length === got.length && timingSafeEqual(want, got);
}

/** A fresh random string of `length` characters (Talk wants ≥ 32; it sends 64). */
export function talkRandom(length = 64): string {
  return randomBytes(Math.ceil(length / 2)).toString("hex").slice(0, length);
}

/** Talk backend URL in canonical form: no trailing slash (protocol §1). */
export function canonicalBackendUrl(url: string): string {
  return url.replace(/\/+$/, "");
}
