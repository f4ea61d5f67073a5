/**
 * The check every API error test makes: status, `application/problem+json`, RFC 9457 members
 * and meetrec's stable `code`, and a detail that says something. Returns the problem document.
 */
import { expect } from "vitest";

export function expectProblem(res: { statusCode: number; headers: Record<string, unknown>; json(): any }, status: number, code: string): any {
  expect(res.statusCode).toBe(status);
  expect(res.headers["content-type"]).toMatch(/^application\/problem\+json/);
  const p = res.json();
  expect(p).toMatchObject({ status, code, type: `urn:meetrec:problem:${code}` });
  expect(typeof p.title).toBe("string");
  expect(p.detail.length).toBeGreaterThan(10);
  return p;
}
