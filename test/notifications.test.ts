import { createHmac, timingSafeEqual } from "node:crypto";
import { existsSync, writeFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import type { NotificationConfig } from "../src/config/schema.js";
import { silentLogger } from "../src/log/logger.js";
import { forgetSecretsForTests } from "../src/log/redact.js";
import { LifeboatError } from "../src/model/errors.js";
import { backoffMs, createNotifier, retryAfterMs, summarizeEvent, type LifeboatEvent } from "../src/schedule/notifications.js";
import { LIFEBOAT_VERSION } from "../src/version.js";
import { tempDir } from "./support/builders.js";
import { CLI, lifeboat } from "./support/cli.js";
import { capturingLogger } from "./support/logs.js";

/** What the receiver got: one entry per HTTP request, with the exact body bytes. */
interface Received {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  raw: Buffer;
}

/** How the receiver answers request number i (0-based); `"hang"` never answers. */
type Answer = { status: number; body?: string; headers?: Record<string, string> } | "hang";

interface Receiver {
  url: string;
  received: Received[];
  close(): Promise<void>;
}

const receivers: Receiver[] = [];

/** A real HTTP receiver on loopback; answers in turn from `answers`, repeating the last one. */
async function startReceiver(answers: Answer[] = [{ status: 200, body: "ok" }]): Promise<Receiver> {
  const received: Received[] = [];
  const server: Server = createServer((req, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const answer = answers[Math.min(received.length, answers.length - 1)]!;
      received.push({ method: req.method!, path: req.url!, headers: req.headers, raw: Buffer.concat(chunks) });
      if (answer === "hang") return;
      res.writeHead(answer.status, { "content-type": "text/plain", ...answer.headers });
      res.end(answer.body ?? "");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const receiver: Receiver = {
    url: `http://127.0.0.1:${port}`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  receivers.push(receiver);
  return receiver;
}

/** Records the back-off asked for, without waiting. */
function recordingSleep(): { sleep: (ms: number) => Promise<void>; waits: number[] } {
  const waits: number[] = [];
  return { waits, sleep: async (ms) => void waits.push(ms) };
}

function webhook(url: string, overrides: Partial<Extract<NotificationConfig, { type: "webhook" }>> = {}): NotificationConfig {
  return { type: "webhook", url, headers: {}, attempts: 5, timeout: "5s", ...overrides };
}

function slack(url: string, overrides: Partial<Extract<NotificationConfig, { type: "slack" }>> = {}): NotificationConfig {
  return { type: "slack", url, attempts: 5, timeout: "5s", ...overrides };
}

const backupFailed: LifeboatEvent = {
  type: "backup-failed",
  job: "orders-db",
  scheduledAt: "2026-11-21T10:00:00.000Z",
  error: { code: "SOURCE_FAILED", message: "pg_dump failed with exit code 1 (backing up orders-db)\npg_dump: error: connection refused" },
};

afterEach(async () => {
  await Promise.all(receivers.splice(0).map((r) => r.close()));
  forgetSecretsForTests();
});

describe("webhook channel", () => {
  it("posts the documented JSON body and headers", async () => {
    const receiver = await startReceiver();
    const notifier = createNotifier({ ops: webhook(`${receiver.url}/hooks/lifeboat`, { headers: { "X-Team": "storage" } }) }, { log: silentLogger, hostname: "host1" });
    const before = Date.now();
    const results = await notifier.notify(backupFailed);

    expect(results).toEqual([{ channel: "ops", ok: true, attempts: 1, status: 200 }]);
    expect(receiver.received).toHaveLength(1);
    const [request] = receiver.received;
    expect(request!.method).toBe("POST");
    expect(request!.path).toBe("/hooks/lifeboat");
    expect(request!.headers["content-type"]).toBe("application/json");
    expect(request!.headers["user-agent"]).toBe(`lifeboat/${LIFEBOAT_VERSION}`);
    expect(request!.headers["x-team"]).toBe("storage");
    expect(request!.headers["x-lifeboat-event"]).toBe("backup-failed");
    expect(request!.headers["x-lifeboat-delivery"]).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(request!.headers["x-lifeboat-signature"]).toBeUndefined();

    const body = JSON.parse(request!.raw.toString("utf8"));
    expect(body).toEqual({
      version: 1,
      event: "backup-failed",
      sentAt: expect.any(String),
      host: "host1",
      lifeboat: LIFEBOAT_VERSION,
      summary: 'backup of job "orders-db" failed: pg_dump failed with exit code 1 (backing up orders-db)',
      data: { job: "orders-db", scheduledAt: "2026-11-21T10:00:00.000Z", error: backupFailed.type === "backup-failed" ? backupFailed.error : null },
    });
    expect(Date.parse(body.sentAt)).toBeGreaterThanOrEqual(before - 1);
    expect(new Date(body.sentAt).toISOString()).toBe(body.sentAt);
  });

  it("signs the raw body bytes with HMAC-SHA256 of the secret, and another secret does not verify", async () => {
    const receiver = await startReceiver();
    const secret = "whsec-correct-horse-battery-staple";
    const notifier = createNotifier({ ops: webhook(receiver.url, { secret }) }, { log: silentLogger, hostname: "host1" });
    // Non-ASCII content: the signature covers bytes, not characters.
    await notifier.notify({ type: "test", message: "zürich → 東京" });

    const { raw, headers } = receiver.received[0]!;
    const signature = headers["x-lifeboat-signature"] as string;
    expect(signature).toMatch(/^sha256=[0-9a-f]{64}$/);
    const verify = (key: string) => {
      const expected = Buffer.from(`sha256=${createHmac("sha256", key).update(raw).digest("hex")}`);
      return expected.length === signature.length && timingSafeEqual(expected, Buffer.from(signature));
    };
    expect(verify(secret)).toBe(true);
    expect(verify("whsec-some-other-secret")).toBe(false);
    expect(JSON.parse(raw.toString("utf8")).data).toEqual({ message: "zürich → 東京" });
  });

  it("retries 500, 500 then 200: three attempts, the same delivery id and body, ok after 3", async () => {
    const receiver = await startReceiver([{ status: 500 }, { status: 500 }, { status: 200 }]);
    const { sleep, waits } = recordingSleep();
    const notifier = createNotifier({ ops: webhook(receiver.url, { secret: "whsec-retry-secret" }) }, { log: silentLogger, sleep });
    const results = await notifier.notify(backupFailed);

    expect(results).toEqual([{ channel: "ops", ok: true, attempts: 3, status: 200 }]);
    expect(receiver.received).toHaveLength(3);
    const ids = new Set(receiver.received.map((r) => r.headers["x-lifeboat-delivery"]));
    expect(ids.size).toBe(1);
    expect(new Set(receiver.received.map((r) => r.raw.toString("utf8"))).size).toBe(1);
    expect(new Set(receiver.received.map((r) => r.headers["x-lifeboat-signature"])).size).toBe(1);
    // Exponential back-off with jitter: about 1 s, then about 2 s.
    expect(waits).toHaveLength(2);
    expect(waits[0]).toBeGreaterThanOrEqual(800);
    expect(waits[0]).toBeLessThanOrEqual(1_200);
    expect(waits[1]).toBeGreaterThanOrEqual(1_600);
    expect(waits[1]).toBeLessThanOrEqual(2_400);
  });

  it("reports a failure after the configured attempts when the receiver keeps answering 5xx", async () => {
    const receiver = await startReceiver([{ status: 503, body: "upstream down" }]);
    const { sleep } = recordingSleep();
    const notifier = createNotifier({ ops: webhook(receiver.url, { attempts: 4 }) }, { log: silentLogger, sleep });
    const results = await notifier.notify(backupFailed);
    expect(results).toEqual([{ channel: "ops", ok: false, attempts: 4, status: 503, error: "HTTP 503: upstream down" }]);
    expect(receiver.received).toHaveLength(4);
  });

  it("does not retry a 400: it is permanent", async () => {
    const receiver = await startReceiver([{ status: 400, body: "invalid_payload" }, { status: 200 }]);
    const { sleep, waits } = recordingSleep();
    const notifier = createNotifier({ ops: webhook(receiver.url) }, { log: silentLogger, sleep });
    const results = await notifier.notify(backupFailed);
    expect(results).toEqual([{ channel: "ops", ok: false, attempts: 1, status: 400, error: "HTTP 400: invalid_payload" }]);
    expect(receiver.received).toHaveLength(1);
    expect(waits).toEqual([]);
  });

  it("retries a 429 after the Retry-After the receiver asked for", async () => {
    const receiver = await startReceiver([{ status: 429, headers: { "retry-after": "7" } }, { status: 204 }]);
    const { sleep, waits } = recordingSleep();
    const notifier = createNotifier({ ops: webhook(receiver.url) }, { log: silentLogger, sleep });
    const results = await notifier.notify(backupFailed);
    expect(results).toEqual([{ channel: "ops", ok: true, attempts: 2, status: 204 }]);
    expect(waits).toEqual([7_000]);
  });

  it("times out each attempt against a receiver that never answers, and reports the failure without throwing", async () => {
    const receiver = await startReceiver(["hang"]);
    const { sleep, waits } = recordingSleep();
    const { log, text } = capturingLogger();
    const notifier = createNotifier({ ops: webhook(receiver.url, { attempts: 2, timeout: "300ms" }) }, { log, sleep });
    const started = performance.now();
    const results = await notifier.notify(backupFailed);
    const elapsedMs = performance.now() - started;

    expect(results).toEqual([{ channel: "ops", ok: false, attempts: 2, status: undefined, error: "no answer within 300ms" }]);
    expect(receiver.received).toHaveLength(2);
    expect(waits).toHaveLength(1);
    expect(elapsedMs).toBeGreaterThanOrEqual(550);
    expect(elapsedMs).toBeLessThan(5_000);
    const warn = text()
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l))
      .find((l) => l.msg === "notification failed");
    expect(warn).toMatchObject({ level: "warn", channel: "ops", event: "backup-failed", attempts: 2, error: "no answer within 300ms", receiver: receiver.url });
  });

  it("reports a receiver that refuses connections as a failure after its attempts", async () => {
    const receiver = await startReceiver();
    const url = receiver.url;
    await receiver.close();
    const notifier = createNotifier({ ops: webhook(url, { attempts: 3 }) }, { log: silentLogger, sleep: recordingSleep().sleep });
    const [result] = await notifier.notify(backupFailed);
    expect(result).toMatchObject({ channel: "ops", ok: false, attempts: 3 });
    expect(result!.error).toMatch(/ECONNREFUSED/);
  });
});

describe("channel selection", () => {
  it("sends an event only to the channels whose `on` includes it, and to every channel by default", async () => {
    const failures = await startReceiver();
    const freshness = await startReceiver();
    const everything = await startReceiver();
    const notifier = createNotifier(
      {
        failures: webhook(failures.url, { on: ["backup-failed", "drill-failed"] }),
        freshness: webhook(freshness.url, { on: ["rpo-exceeded"] }),
        everything: webhook(everything.url),
      },
      { log: silentLogger },
    );

    const first = await notifier.notify(backupFailed);
    expect(first.map((r) => r.channel)).toEqual(["failures", "everything"]);
    const second = await notifier.notify({ type: "rpo-exceeded", job: "orders-db", rpoSeconds: 3_600, exposureSeconds: 7_800, newestConsistentAt: "2026-11-21T08:00:00.000Z" });
    expect(second.map((r) => r.channel)).toEqual(["freshness", "everything"]);
    const third = await notifier.notify({ type: "daemon-downtime", downSince: "2026-11-21T07:00:00.000Z", startedAt: "2026-11-21T10:02:00.000Z", downtimeSeconds: 10_920, missed: [] });
    expect(third.map((r) => r.channel)).toEqual(["everything"]);

    expect(failures.received.map((r) => r.headers["x-lifeboat-event"])).toEqual(["backup-failed"]);
    expect(freshness.received.map((r) => r.headers["x-lifeboat-event"])).toEqual(["rpo-exceeded"]);
    expect(everything.received.map((r) => r.headers["x-lifeboat-event"])).toEqual(["backup-failed", "rpo-exceeded", "daemon-downtime"]);
  });

  it("sends a test event to every channel whatever its `on`, or only to the named one", async () => {
    const a = await startReceiver();
    const b = await startReceiver();
    const channels = { a: webhook(a.url, { on: ["rpo-exceeded"] }), b: slack(b.url, { on: ["drill-failed"] }) };
    const all = await createNotifier(channels, { log: silentLogger }).notify({ type: "test", message: "hello" });
    expect(all.map((r) => [r.channel, r.ok])).toEqual([["a", true], ["b", true]]);
    const one = await createNotifier(channels, { log: silentLogger, only: "b" }).notify({ type: "test", message: "hello" });
    expect(one.map((r) => r.channel)).toEqual(["b"]);
    expect([a.received.length, b.received.length]).toEqual([1, 2]);
  });

  it("names the known channels when asked for an unknown one", () => {
    const make = () => createNotifier({ ops: webhook("http://127.0.0.1:9/"), chat: slack("http://127.0.0.1:9/") }, { log: silentLogger, only: "pager" });
    expect(make).toThrow(LifeboatError);
    expect(make).toThrow('unknown notification channel "pager"; expected one of: ops, chat');
  });

  it("delivers to the other channels when one fails", async () => {
    const good = await startReceiver();
    const bad = await startReceiver([{ status: 404, body: "no_service" }]);
    const results = await createNotifier({ bad: slack(bad.url), good: webhook(good.url) }, { log: silentLogger }).notify(backupFailed);
    expect(results).toEqual([
      { channel: "bad", ok: false, attempts: 1, status: 404, error: "HTTP 404: no_service" },
      { channel: "good", ok: true, attempts: 1, status: 200 },
    ]);
  });
});

describe("slack channel", () => {
  it("posts text with a severity prefix and a mrkdwn section of the details", async () => {
    const receiver = await startReceiver();
    const notifier = createNotifier({ chat: slack(`${receiver.url}/services/T000/B000/abc`) }, { log: silentLogger, hostname: "host1" });
    await notifier.notify({ type: "drill-failed", plan: "quarterly", drillId: "20261121T100000Z-ab12", verdict: "missed-targets", summary: "RTO 2h 5m over its 1h target <checked>" });

    const [request] = receiver.received;
    expect(request!.headers["content-type"]).toBe("application/json");
    expect(request!.headers["x-lifeboat-signature"]).toBeUndefined();
    const body = JSON.parse(request!.raw.toString("utf8"));
    expect(Object.keys(body).sort()).toEqual(["blocks", "text"]);
    expect(body.text).toBe('[ERROR] drill 20261121T100000Z-ab12 of plan "quarterly" missed-targets: RTO 2h 5m over its 1h target <checked>');
    expect(body.blocks[0].type).toBe("section");
    expect(body.blocks[0].text.type).toBe("mrkdwn");
    const mrkdwn: string = body.blocks[0].text.text;
    expect(mrkdwn).toContain("*plan:* quarterly");
    expect(mrkdwn).toContain("*verdict:* missed-targets");
    expect(mrkdwn).toContain("*host:* host1");
    // <, > and & are control characters in mrkdwn and must arrive escaped.
    expect(mrkdwn).toContain("&lt;checked&gt;");
    expect(mrkdwn).not.toContain("<checked>");
    // No emoji anywhere: plain-text receivers show the same thing.
    expect(request!.raw.toString("utf8")).not.toMatch(/\p{Extended_Pictographic}/u);
  });

  it("prefixes warnings and tests with their own severity", async () => {
    const receiver = await startReceiver();
    const notifier = createNotifier({ chat: slack(receiver.url) }, { log: silentLogger, hostname: "host1" });
    await notifier.notify({ type: "rpo-exceeded", job: "orders-db", rpoSeconds: 3_600, exposureSeconds: 7_800, newestConsistentAt: null });
    await notifier.notify({ type: "test", message: "hello" });
    const texts = receiver.received.map((r) => JSON.parse(r.raw.toString("utf8")).text);
    expect(texts).toEqual(['[WARNING] RPO exposure of job "orders-db" is 2h 10m, over its 1h target', "[INFO] test notification from lifeboat on host1: hello"]);
  });
});

describe("secrets", () => {
  it("never puts the signing secret, header values or the Slack URL path in logs or results", async () => {
    const slackReceiver = await startReceiver([{ status: 500 }, { status: 403, body: "invalid_token" }]);
    const hookReceiver = await startReceiver(["hang"]);
    const slackPath = "/services/T0SECRET/B0SECRET/xoxSecretToken123456";
    const secret = "whsec-do-not-log-me-7f3a9c";
    const token = "Bearer tok-do-not-log-me-41d2";
    const { log, text } = capturingLogger();
    const notifier = createNotifier(
      {
        chat: slack(`${slackReceiver.url}${slackPath}`),
        ops: webhook(`${hookReceiver.url}/hook?key=query-secret-998877`, { secret, headers: { Authorization: token }, attempts: 2, timeout: "200ms" }),
      },
      { log, sleep: recordingSleep().sleep },
    );
    const results = await notifier.notify(backupFailed);
    expect(results.map((r) => r.ok)).toEqual([false, false]);
    expect(slackReceiver.received[0]!.path).toBe(slackPath);
    expect(hookReceiver.received[0]!.headers.authorization).toBe(token);

    const logged = text();
    expect(logged).toContain("notification failed");
    expect(logged).toContain("notification attempt failed; retrying");
    const everything = logged + JSON.stringify(results);
    for (const leak of [slackPath, "xoxSecretToken123456", "T0SECRET", secret, token, "tok-do-not-log-me", "query-secret-998877", "/hook"]) {
      expect(everything).not.toContain(leak);
    }
  });
});

describe("summaries", () => {
  const cases: Array<[string, LifeboatEvent, string]> = [
    ["a failed backup names the job and the first line of the error", backupFailed, 'backup of job "orders-db" failed: pg_dump failed with exit code 1 (backing up orders-db)'],
    [
      "RPO exposure names the exposure and the target",
      { type: "rpo-exceeded", job: "orders-db", rpoSeconds: 3_600, exposureSeconds: 7_800, newestConsistentAt: "2026-11-21T08:00:00.000Z" },
      'RPO exposure of job "orders-db" is 2h 10m, over its 1h target',
    ],
    [
      "a job without any backup says so",
      { type: "rpo-exceeded", job: "orders-db", rpoSeconds: 3_600, exposureSeconds: null, newestConsistentAt: null },
      'job "orders-db" has no consistent backup, so its 1h RPO target cannot be met',
    ],
    [
      "a failed drill names the drill, the plan and the verdict",
      { type: "drill-failed", plan: "quarterly", drillId: "20261121T100000Z-ab12", verdict: "missed-targets", summary: "RTO 2h 5m over its 1h target" },
      'drill 20261121T100000Z-ab12 of plan "quarterly" missed-targets: RTO 2h 5m over its 1h target',
    ],
    [
      "downtime counts the missed runs",
      { type: "daemon-downtime", downSince: "2026-11-21T07:00:00.000Z", startedAt: "2026-11-21T10:02:00.000Z", downtimeSeconds: 10_920, missed: [{ job: "orders-db", slots: 2 }, { job: "uploads", slots: 1 }] },
      "lifeboat daemon on host1 started after 3h 2m of downtime; 3 scheduled runs were missed",
    ],
    [
      "downtime with one missed run is singular",
      { type: "daemon-downtime", downSince: "2026-11-21T07:00:00.000Z", startedAt: "2026-11-21T07:30:00.000Z", downtimeSeconds: 1_800, missed: [{ job: "orders-db", slots: 1 }] },
      "lifeboat daemon on host1 started after 30m of downtime; 1 scheduled run was missed",
    ],
  ];
  it.each(cases)("%s", (_name, event, expected) => {
    expect(summarizeEvent(event, "host1")).toBe(expected);
  });

  it("backs off exponentially with jitter, capped at 30 s", () => {
    expect([1, 2, 3, 4].map((n) => backoffMs(n, () => 0.5))).toEqual([1_000, 2_000, 4_000, 8_000]);
    expect(backoffMs(1, () => 0)).toBe(800);
    expect(backoffMs(1, () => 1)).toBe(1_200);
    expect(backoffMs(10, () => 1)).toBe(30_000);
  });

  it("reads Retry-After as seconds or an HTTP date, capped at 60 s", () => {
    const now = Date.parse("2026-11-21T10:00:00Z");
    expect(retryAfterMs("3", now)).toBe(3_000);
    expect(retryAfterMs("3600", now)).toBe(60_000);
    expect(retryAfterMs("Sat, 21 Nov 2026 10:00:05 GMT", now)).toBe(5_000);
    expect(retryAfterMs("soon", now)).toBeUndefined();
    expect(retryAfterMs(null, now)).toBeUndefined();
  });
});

describe("lifeboat notify test", () => {
  let work: string;
  beforeAll(() => {
    expect(existsSync(CLI), "run `npm run build` first (npm test does)").toBe(true);
    work = tempDir("lifeboat-notify-");
  });

  function writeConfig(name: string, yaml: string): string {
    const file = join(work, name);
    writeFileSync(file, yaml);
    return file;
  }

  it("delivers a test event to every channel and exits 0", async () => {
    const hook = await startReceiver();
    const chat = await startReceiver();
    const config = writeConfig(
      "ok.yaml",
      `notifications:
  ops:
    type: webhook
    url: ${hook.url}/hook
    secret: \${env:HOOK_SECRET}
    on: [backup-failed]
  chat:
    type: slack
    url: \${env:SLACK_WEBHOOK_URL}
`,
    );
    const secret = "whsec-cli-secret-5512";
    const run = await lifeboat(["-c", config, "notify", "test"], { env: { HOOK_SECRET: secret, SLACK_WEBHOOK_URL: `${chat.url}/services/T1/B1/cliSlackToken42` } });
    expect(run.stderr).not.toContain("cliSlackToken42");
    expect(run.stderr).not.toContain(secret);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe("ops: delivered (HTTP 200, 1 attempt)\nchat: delivered (HTTP 200, 1 attempt)\n");

    const request = hook.received[0]!;
    expect(request.headers["x-lifeboat-event"]).toBe("test");
    const body = JSON.parse(request.raw.toString("utf8"));
    expect(body).toMatchObject({ version: 1, event: "test", lifeboat: LIFEBOAT_VERSION });
    expect(request.headers["x-lifeboat-signature"]).toBe(`sha256=${createHmac("sha256", secret).update(request.raw).digest("hex")}`);
    expect(chat.received[0]!.path).toBe("/services/T1/B1/cliSlackToken42");
    expect(JSON.parse(chat.received[0]!.raw.toString("utf8")).text).toMatch(/^\[INFO\] test notification from lifeboat on /);
  });

  it("sends to the named channel only, with --json", async () => {
    const hook = await startReceiver();
    const chat = await startReceiver();
    const config = writeConfig("one.yaml", `notifications:\n  ops: { type: webhook, url: "${hook.url}" }\n  chat: { type: slack, url: "${chat.url}" }\n`);
    const run = await lifeboat(["-c", config, "--json", "notify", "test", "chat"]);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({ ok: true, event: "test", results: [{ channel: "chat", ok: true, attempts: 1, status: 200 }] });
    expect([hook.received.length, chat.received.length]).toEqual([0, 1]);
  });

  it("exits 3 when a receiver keeps failing, after the configured attempts", async () => {
    const hook = await startReceiver([{ status: 500 }]);
    const config = writeConfig("failing.yaml", `notifications:\n  ops: { type: webhook, url: "${hook.url}", attempts: 2, timeout: 2s }\n`);
    const run = await lifeboat(["-c", config, "notify", "test"]);
    expect(run.code, run.stderr).toBe(3);
    expect(run.stdout).toBe("ops: failed after 2 attempts: HTTP 500\n");
    expect(hook.received).toHaveLength(2);
    expect(run.stderr).toContain('"msg":"notification failed"');
  });

  it("exits 2 for an unknown channel, naming the known ones", async () => {
    const hook = await startReceiver();
    const config = writeConfig("unknown.yaml", `notifications:\n  ops: { type: webhook, url: "${hook.url}" }\n`);
    const run = await lifeboat(["-c", config, "notify", "test", "pager"]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('error: unknown notification channel "pager"; expected one of: ops');
    expect(hook.received).toHaveLength(0);
  });

  it("exits 2 when no channels are configured", async () => {
    const config = writeConfig("none.yaml", "notifications: {}\n");
    const run = await lifeboat(["-c", config, "notify", "test"]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("error: no notification channels are configured");
  });
});
