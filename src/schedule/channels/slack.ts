import type { NotificationConfig } from "../../config/schema.js";
import type { ChannelKind, Severity } from "./channel.js";

type SlackConfig = Extract<NotificationConfig, { type: "slack" }>;

const PREFIX: Record<Severity, string> = { error: "[ERROR]", warning: "[WARNING]", info: "[INFO]" };

/** Slack limits a section's text to 3000 characters; stay well under it. */
const SECTION_MAX = 2900;
const TEXT_MAX = 1000;

/** Slack's mrkdwn needs only these three escaped. */
function escapeMrkdwn(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/**
 * A Slack-compatible incoming webhook: `text` (a severity prefix and the
 * summary, which Mattermost and Rocket.Chat show too) and one mrkdwn section
 * block with the details, plus a context line naming the host. The URL is the
 * credential, so it is treated as a secret.
 */
export const slackChannel: ChannelKind<SlackConfig> = {
  type: "slack",
  secrets(config) {
    return [config.url];
  },
  buildRequest(_config, n) {
    const text = truncate(`${PREFIX[n.severity]} ${n.summary}`, TEXT_MAX);
    const details = n.details.map(([label, value]) => `*${escapeMrkdwn(label)}:* ${escapeMrkdwn(value)}`).join("\n");
    const body = JSON.stringify({
      text,
      blocks: [
        { type: "section", text: { type: "mrkdwn", text: truncate(`*${escapeMrkdwn(text)}*\n${details}`, SECTION_MAX) } },
        { type: "context", elements: [{ type: "mrkdwn", text: escapeMrkdwn(`lifeboat ${n.lifeboatVersion} on ${n.host} · ${n.sentAt}`) }] },
      ],
    });
    return { body, headers: { "content-type": "application/json", "user-agent": `lifeboat/${n.lifeboatVersion}` } };
  },
};
