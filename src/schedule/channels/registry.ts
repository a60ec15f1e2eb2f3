import type { NotificationConfig } from "../../config/schema.js";
import { LifeboatError } from "../../model/errors.js";
import type { ChannelKind } from "./channel.js";
import { slackChannel } from "./slack.js";
import { webhookChannel } from "./webhook.js";

/** Every notification channel kind, filled in one place. */
const CHANNEL_KINDS: { [K in NotificationConfig["type"]]: ChannelKind<Extract<NotificationConfig, { type: K }>> } = {
  webhook: webhookChannel,
  slack: slackChannel,
};

export function channelKind<C extends NotificationConfig>(config: C): ChannelKind<C> {
  const kind = CHANNEL_KINDS[config.type as NotificationConfig["type"]];
  if (!kind) {
    throw new LifeboatError("NOTIFICATION_UNKNOWN_KIND", `unknown notification type "${String(config.type)}"; expected one of: ${Object.keys(CHANNEL_KINDS).join(", ")}`, {
      kind: "usage",
    });
  }
  return kind as unknown as ChannelKind<C>;
}
