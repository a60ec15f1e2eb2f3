import { createHmac } from "node:crypto";
import type { NotificationConfig } from "../../config/schema.js";
import type { ChannelKind } from "./channel.js";

type WebhookConfig = Extract<NotificationConfig, { type: "webhook" }>;

/** The version of the JSON body below; bumped only for incompatible changes. */
export const WEBHOOK_BODY_VERSION = 1;

/** `sha256=<hex>`: HMAC-SHA256 of the raw body bytes, keyed with the channel's secret. */
export function webhookSignature(secret: string, body: string | Buffer): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
}

/**
 * A generic webhook: a JSON POST per event,
 * `{ version, event, sentAt, host, lifeboat, summary, data }`, with
 * `X-Lifeboat-Event` and `X-Lifeboat-Delivery` headers, and
 * `X-Lifeboat-Signature` when a secret is configured. Configured headers are
 * added, but cannot replace the signature, event or delivery headers.
 */
export const webhookChannel: ChannelKind<WebhookConfig> = {
  type: "webhook",
  secrets(config) {
    // Header values given as references are registered when the config is loaded; values of
    // headers whose names say they carry credentials are secrets however they were written.
    const credentials = Object.entries(config.headers).filter(([name]) => /authorization|token|secret|key|cookie|signature|password/i.test(name));
    return [...(config.secret ? [config.secret] : []), ...credentials.map(([, value]) => value)];
  },
  buildRequest(config, n) {
    const { type, ...data } = n.event;
    const body = JSON.stringify({
      version: WEBHOOK_BODY_VERSION,
      event: type,
      sentAt: n.sentAt,
      host: n.host,
      lifeboat: n.lifeboatVersion,
      summary: n.summary,
      data,
    });
    const headers: Record<string, string> = {
      "content-type": "application/json",
      "user-agent": `lifeboat/${n.lifeboatVersion}`,
    };
    for (const [name, value] of Object.entries(config.headers)) headers[name.toLowerCase()] = value;
    headers["x-lifeboat-event"] = type;
    headers["x-lifeboat-delivery"] = n.deliveryId;
    if (config.secret) headers["x-lifeboat-signature"] = webhookSignature(config.secret, Buffer.from(body, "utf8"));
    return { body, headers };
  },
};
