/**
 * One S3 client per bucket configuration, shared by the parts that use buckets (delivery, the
 * segment store): connections are reused, requests time out instead of hanging.
 */
import { S3Client } from "@aws-sdk/client-s3";

/** What a client needs of a bucket configuration (`S3Target` and the segment bucket). */
export interface S3Endpoint {
  region: string;
  endpoint?: string;
  forcePathStyle: boolean;
  accessKeyId?: string;
  secretAccessKey?: string;
}

const clients = new Map<string, S3Client>();

/** The shared client for `t` (connect timeout 3 s, request timeout 30 s, 2 attempts). */
export function s3Client(t: S3Endpoint): S3Client {
  const k = JSON.stringify([t.endpoint, t.region, t.forcePathStyle, t.accessKeyId]);
  let c = clients.get(k);
  if (!c) {
    c = new S3Client({
      region: t.region, endpoint: t.endpoint, forcePathStyle: t.forcePathStyle,
      ...(t.accessKeyId && t.secretAccessKey ? { credentials: { accessKeyId: t.accessKeyId, secretAccessKey: t.secretAccessKey } } : {}),
      maxAttempts: 2,
      requestHandler: { connectionTimeout: 3000, requestTimeout: 30000 },
    });
    clients.set(k, c);
  }
  return c;
}
