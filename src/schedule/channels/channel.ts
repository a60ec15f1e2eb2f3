import type { NotificationConfig } from "../../config/schema.js";
import type { LifeboatEvent } from "../notifications.js";

/** How urgent an event is; channels may show it (Slack prefixes its text with it). */
export type Severity = "error" | "warning" | "info";

/**
 * One event, rendered for people and stamped for one delivery. Built once per
 * channel and event: every retry sends the same bytes (so the signature and
 * the delivery id stay the same, and receivers can de-duplicate).
 */
export interface OutgoingNotification {
  event: LifeboatEvent;
  /** One line for people, e.g. `backup of job "orders-db" failed: …`. */
  summary: string;
  severity: Severity;
  /** The event's facts for people, in order: label and plain-text value. */
  details: Array<[label: string, value: string]>;
  /** ISO 8601, when the notification was first built. */
  sentAt: string;
  host: string;
  /** A UUID, the same on every retry of this delivery. */
  deliveryId: string;
  lifeboatVersion: string;
}

/** What a channel sends: a POST to its configured `url` with this body and these headers. */
export interface ChannelRequest {
  body: string;
  /** Header names in lower case. */
  headers: Record<string, string>;
}

/**
 * One kind of notification channel (`type:` in lifeboat.yaml). Kinds only
 * render: delivery, time-outs and retries belong to the notifier, so every
 * kind gets the same behaviour.
 */
export interface ChannelKind<C extends NotificationConfig> {
  type: C["type"];
  /**
   * Values of this channel's config that must never reach logs or errors
   * (signing secrets, header values, URLs that carry a token). The notifier
   * registers them with `registerSecret`.
   */
  secrets(config: C): string[];
  /** Builds the request for one notification. Pure and deterministic for a given notification: no I/O, no clock. */
  buildRequest(config: C, notification: OutgoingNotification): ChannelRequest;
}
