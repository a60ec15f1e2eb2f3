import { randomUUID } from "node:crypto";
import { hostname as osHostname } from "node:os";
import type { NotificationConfig, NotificationEvent } from "../config/schema.js";
import type { Logger } from "../log/logger.js";
import { redactText, redactValue, registerSecret } from "../log/redact.js";
import { formatDuration, parseDurationMs } from "../model/duration.js";
import { LifeboatError } from "../model/errors.js";
import { LIFEBOAT_VERSION } from "../version.js";
import type { ChannelRequest, OutgoingNotification, Severity } from "./channels/channel.js";
import { channelKind } from "./channels/registry.js";

/**
 * Notifications: events the daemon and the CLI raise (a backup failed, a
 * drill missed its targets, RPO exposure is over target, the daemon was down)
 * sent to the channels declared under `notifications:` in lifeboat.yaml.
 *
 * Delivery is at-least-once and best effort: each attempt is a POST with its
 * own time-out; network errors, 5xx and 429 are retried with exponential
 * back-off and jitter (Retry-After is honoured, capped); any other 4xx, or a
 * redirect, is permanent. A failed notification never throws and never fails
 * the run that raised it: it is logged and reported in the result.
 */

export type LifeboatEvent =
  | { type: "backup-failed"; job: string; scheduledAt?: string | undefined; error: { code: string; message: string } }
  | { type: "drill-failed"; plan: string; drillId: string; verdict: string; summary: string }
  | { type: "rpo-exceeded"; job: string; rpoSeconds: number; exposureSeconds: number | null; newestConsistentAt: string | null }
  | { type: "daemon-downtime"; downSince: string; startedAt: string; downtimeSeconds: number; missed: Array<{ job: string; slots: number }> }
  | { type: "test"; message: string };

export interface DeliveryResult {
  channel: string;
  ok: boolean;
  /** HTTP requests made (0 when the request could not even be built). */
  attempts: number;
  /** The last HTTP status received, if any. */
  status?: number | undefined;
  /** Why the delivery failed, for people (never the URL or a secret). */
  error?: string | undefined;
}

export interface Notifier {
  /**
   * Sends `event` to every channel whose `on` includes its type (all four
   * events when `on` is not set); a `test` event goes to every channel. Never
   * rejects: one result per channel tried, in declaration order.
   */
  notify(event: LifeboatEvent): Promise<DeliveryResult[]>;
}

export interface NotifierOptions {
  log: Logger;
  /** Named in every notification; defaults to os.hostname(). */
  hostname?: string;
  /** Waits between attempts; injectable so tests need not wait. */
  sleep?: (ms: number) => Promise<void>;
  /** Only this channel (`lifeboat notify test CHANNEL`); unknown names are a usage error. */
  only?: string;
}

/** The events a channel gets when its `on` is not set. */
export const DEFAULT_EVENTS: readonly NotificationEvent[] = ["backup-failed", "drill-failed", "rpo-exceeded", "daemon-downtime"];

const BACKOFF_BASE_MS = 1_000;
const BACKOFF_MAX_MS = 30_000;
const RETRY_AFTER_MAX_MS = 60_000;
const DEFAULT_TIMEOUT_MS = 10_000;
const SNIPPET_BYTES = 2_048;

/**
 * Builds a notifier for the configured channels. Throws a usage
 * `LifeboatError` only for a wrong `only` name or an unknown channel type;
 * every secret in the channels is registered for redaction here.
 */
export function createNotifier(channels: Record<string, NotificationConfig>, options: NotifierOptions): Notifier {
  const names = Object.keys(channels);
  if (options.only !== undefined && !(options.only in channels)) {
    throw new LifeboatError(
      "NOTIFICATION_UNKNOWN",
      `unknown notification channel "${options.only}"${names.length ? `; expected one of: ${names.join(", ")}` : "; the config has no notification channels"}`,
      { kind: "usage" },
    );
  }
  const selected = names.filter((n) => options.only === undefined || n === options.only);
  for (const name of selected) {
    const config = channels[name]!;
    for (const secret of channelKind(config).secrets(config)) registerSecret(secret);
  }
  const host = options.hostname ?? osHostname();
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));

  return {
    async notify(raw) {
      // Events carry error messages from tools and stores: no secret leaves in a notification.
      const event = redactValue(raw);
      const targets = selected.filter((name) => event.type === "test" || (channels[name]!.on ?? DEFAULT_EVENTS).includes(event.type));
      return Promise.all(
        targets.map(async (name): Promise<DeliveryResult> => {
          try {
            return await deliver(name, channels[name]!, event, { log: options.log, host, sleep });
          } catch (error) {
            // Only a bug can land here (deliver handles every failure it knows); still never reject.
            const message = redactText((error as Error)?.message ?? String(error));
            options.log.warn({ channel: name, event: event.type, attempts: 0, error: message }, "notification failed");
            return { channel: name, ok: false, attempts: 0, error: message };
          }
        }),
      );
    },
  };
}

interface DeliveryContext {
  log: Logger;
  host: string;
  sleep: (ms: number) => Promise<void>;
}

type AttemptOutcome =
  | { ok: true; status: number }
  | { ok: false; status?: number | undefined; error: string; retryable: boolean; retryAfterMs?: number | undefined };

async function deliver(channel: string, config: NotificationConfig, event: LifeboatEvent, ctx: DeliveryContext): Promise<DeliveryResult> {
  const notification: OutgoingNotification = {
    event,
    summary: summarizeEvent(event, ctx.host),
    severity: severityOf(event),
    details: describeEvent(event, ctx.host),
    sentAt: new Date().toISOString(),
    host: ctx.host,
    deliveryId: randomUUID(),
    lifeboatVersion: LIFEBOAT_VERSION,
  };
  const request = channelKind(config).buildRequest(config, notification);
  const timeoutMs = parseDurationMs(config.timeout) ?? DEFAULT_TIMEOUT_MS;
  const log = ctx.log.child({ channel, event: event.type, deliveryId: notification.deliveryId });

  let attempt = 0;
  let last: AttemptOutcome | undefined;
  while (attempt < config.attempts) {
    attempt++;
    last = await attemptOnce(config.url, request, timeoutMs);
    if (last.ok) {
      log.info({ attempts: attempt, status: last.status }, "notification delivered");
      return { channel, ok: true, attempts: attempt, status: last.status };
    }
    if (!last.retryable || attempt >= config.attempts) break;
    const retryInMs = last.retryAfterMs ?? backoffMs(attempt);
    log.debug({ attempt, status: last.status, error: last.error, retryInMs }, "notification attempt failed; retrying");
    await ctx.sleep(retryInMs);
  }
  const failed = last as Extract<AttemptOutcome, { ok: false }>;
  log.warn({ attempts: attempt, status: failed.status, error: failed.error, receiver: originOf(config.url), permanent: !failed.retryable }, "notification failed");
  return { channel, ok: false, attempts: attempt, status: failed.status, error: failed.error };
}

async function attemptOnce(url: string, request: ChannelRequest, timeoutMs: number): Promise<AttemptOutcome> {
  let response: Response;
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    response = await fetch(url, { method: "POST", body: request.body, headers: request.headers, redirect: "manual", signal });
  } catch (error) {
    return { ok: false, error: networkError(error, timeoutMs), retryable: true };
  }
  const status = response.status;
  // The status is what decides; a body cut short by the time-out after a 2xx is still a delivery.
  const snippet = await readSnippet(response).catch(() => "");
  if (status >= 200 && status < 300) return { ok: true, status };
  const detail = snippet ? `HTTP ${status}: ${snippet}` : `HTTP ${status}`;
  if (status >= 300 && status < 400) return { ok: false, status, error: `${detail} (redirects are not followed; configure the final URL)`, retryable: false };
  if (status === 429 || status >= 500) return { ok: false, status, error: detail, retryable: true, retryAfterMs: retryAfterMs(response.headers.get("retry-after")) };
  return { ok: false, status, error: detail, retryable: false };
}

/** The first bytes of a response body, on one line, redacted (Slack answers `invalid_payload`, `no_service`…). */
async function readSnippet(response: Response): Promise<string> {
  if (!response.body) return "";
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < SNIPPET_BYTES) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  const text = Buffer.concat(chunks).subarray(0, SNIPPET_BYTES).toString("utf8").replace(/\s+/g, " ").trim();
  return redactText(text.length > 200 ? `${text.slice(0, 199)}…` : text);
}

function networkError(error: unknown, timeoutMs: number): string {
  const e = error as { name?: string; message?: string; cause?: { message?: string; code?: string } };
  if (e?.name === "TimeoutError") return `no answer within ${formatDuration(timeoutMs)}`;
  const cause = e?.cause?.message ?? e?.cause?.code;
  return redactText(cause ? String(cause) : (e?.message ?? String(error)));
}

/** Exponential back-off with jitter: about 1 s, 2 s, 4 s… after attempts 1, 2, 3…, never over 30 s. */
export function backoffMs(attempt: number, random: () => number = Math.random): number {
  const exponential = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (attempt - 1));
  return Math.round(Math.min(BACKOFF_MAX_MS, exponential * (0.8 + 0.4 * random())));
}

/** Retry-After as seconds or an HTTP date, capped; undefined when absent or unreadable. */
export function retryAfterMs(header: string | null, now: number = Date.now()): number | undefined {
  if (header === null || header.trim() === "") return undefined;
  const text = header.trim();
  let ms: number;
  if (/^\d+(\.\d+)?$/.test(text)) ms = Number(text) * 1_000;
  else {
    const at = Date.parse(text);
    if (Number.isNaN(at)) return undefined;
    ms = at - now;
  }
  return Math.max(0, Math.min(RETRY_AFTER_MAX_MS, Math.round(ms)));
}

function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return "(invalid URL)";
  }
}

function severityOf(event: LifeboatEvent): Severity {
  switch (event.type) {
    case "backup-failed":
    case "drill-failed":
      return "error";
    case "rpo-exceeded":
    case "daemon-downtime":
      return "warning";
    case "test":
      return "info";
  }
}

function firstLine(text: string, max = 300): string {
  const line = (text.split(/\r?\n/).find((l) => l.trim() !== "") ?? "").trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

function seconds(value: number): string {
  return formatDuration(value * 1_000);
}

/** One line for people, naming the job or plan and what happened. */
export function summarizeEvent(event: LifeboatEvent, host: string): string {
  switch (event.type) {
    case "backup-failed":
      return `backup of job "${event.job}" failed: ${firstLine(event.error.message)}`;
    case "drill-failed":
      return `drill ${event.drillId} of plan "${event.plan}" ${event.verdict}: ${firstLine(event.summary)}`;
    case "rpo-exceeded":
      return event.exposureSeconds === null
        ? `job "${event.job}" has no consistent backup, so its ${seconds(event.rpoSeconds)} RPO target cannot be met`
        : `RPO exposure of job "${event.job}" is ${seconds(event.exposureSeconds)}, over its ${seconds(event.rpoSeconds)} target`;
    case "daemon-downtime": {
      const slots = event.missed.reduce((sum, m) => sum + m.slots, 0);
      const missed = slots === 0 ? "no scheduled runs were missed" : slots === 1 ? "1 scheduled run was missed" : `${slots} scheduled runs were missed`;
      return `lifeboat daemon on ${host} started after ${seconds(event.downtimeSeconds)} of downtime; ${missed}`;
    }
    case "test":
      return `test notification from lifeboat on ${host}: ${firstLine(event.message)}`;
  }
}

/** The event's facts for people, in order. */
export function describeEvent(event: LifeboatEvent, host: string): Array<[string, string]> {
  const facts: Array<[string, string]> = [];
  switch (event.type) {
    case "backup-failed":
      facts.push(["job", event.job]);
      if (event.scheduledAt) facts.push(["scheduled at", event.scheduledAt]);
      facts.push(["error", `${event.error.message} [${event.error.code}]`]);
      break;
    case "drill-failed":
      facts.push(["plan", event.plan], ["drill", event.drillId], ["verdict", event.verdict], ["summary", event.summary]);
      break;
    case "rpo-exceeded":
      facts.push(
        ["job", event.job],
        ["RPO target", seconds(event.rpoSeconds)],
        ["exposure", event.exposureSeconds === null ? "no consistent backup" : seconds(event.exposureSeconds)],
        ["newest consistent backup", event.newestConsistentAt ?? "none"],
      );
      break;
    case "daemon-downtime":
      facts.push(["down since", event.downSince], ["started at", event.startedAt], ["downtime", seconds(event.downtimeSeconds)]);
      facts.push(["missed runs", event.missed.length === 0 ? "none" : event.missed.map((m) => `${m.job}: ${m.slots}`).join(", ")]);
      break;
    case "test":
      facts.push(["message", event.message]);
      break;
  }
  facts.push(["host", host]);
  return facts;
}
