/**
 * A webhook receiver on 127.0.0.1 (random port) that records every request it gets, checked
 * with the standardwebhooks library against `secret`, and answers with `answer()` (default 200).
 */
import { createServer } from "node:http";
import { Webhook } from "standardwebhooks";

/** One request as received. */
export interface ReceivedHook {
  id: string;
  timestamp: string;
  type: string;
  /** `data.status` and `data.id` of the event (the recording's). */
  status: string;
  recording: string;
  verified: boolean;
  answered: number;
}

export interface WebhookReceiver {
  /** `http://127.0.0.1:{port}/hooks`. */
  url: string;
  received: ReceivedHook[];
  close(): Promise<void>;
}

export async function startWebhookReceiver(secret: string, answer: () => number = () => 200): Promise<WebhookReceiver> {
  const received: ReceivedHook[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      let verified = false;
      try {
        new Webhook(secret).verify(body, req.headers as Record<string, string>);
        verified = true;
      } catch { /* stays false */ }
      const event = JSON.parse(body);
      const answered = answer();
      received.push({
        id: String(req.headers["webhook-id"]), timestamp: String(req.headers["webhook-timestamp"]), type: event.type,
        status: event.data.status, recording: event.data.id, verified, answered,
      });
      res.writeHead(answered).end(answered === 200 ? "ok" : "try later");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}/hooks`, received,
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}
