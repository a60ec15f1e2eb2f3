import { redactText, registerSecret } from "../../log/redact.js";
import { LifeboatError } from "../../model/errors.js";
import { templateText, type HttpCheck } from "../../model/plan.js";
import type { CheckContext, CheckResult } from "./check.js";
import { stoppedError } from "./command.js";

/**
 * `verify: { http }`: one request with Node's `fetch`, redirects not
 * followed (a 302 is a status like any other: list it to accept it). It
 * passes when the status is one of `status` and, when given, the body (its
 * first 1 MiB) contains `bodyContains`. A user and password in the URL are
 * sent as basic authentication (fetch refuses credentials in URLs) unless
 * the check sets an Authorization header; the password is never shown.
 * The request is cut short by the attempt's signal (timeout, interrupt).
 *
 * A wrong status or body, and a server that cannot be reached (connection
 * refused, unknown host, TLS failure), fail with CHECK_FAILED (kind
 * "verification") naming the URL and what happened.
 */
export async function runHttpCheck(check: HttpCheck, ctx: CheckContext): Promise<CheckResult> {
  const { url, headers, shown } = prepare(check, ctx);
  const what = `${check.method} ${shown}`;
  let response: Response;
  try {
    response = await fetch(url, { method: check.method, headers, redirect: "manual", signal: ctx.signal });
  } catch (error) {
    if (ctx.signal.aborted) throw stoppedError(ctx.signal, what);
    throw new LifeboatError("CHECK_FAILED", `${what} failed: ${networkReason(error)}`, { kind: "verification", cause: error });
  }
  let body: string;
  try {
    body = await readBody(response, MAX_BODY_BYTES);
  } catch (error) {
    if (ctx.signal.aborted) throw stoppedError(ctx.signal, what);
    throw new LifeboatError("CHECK_FAILED", `${what} returned HTTP ${response.status} but reading its body failed: ${networkReason(error)}`, {
      kind: "verification",
      cause: error,
    });
  }
  const status = response.status;
  if (!check.status.includes(status)) {
    throw new LifeboatError("CHECK_FAILED", `${what} returned HTTP ${status}; expected ${listStatuses(check.status)}${excerpt(body)}`, {
      kind: "verification",
      details: { status },
    });
  }
  const needle = check.bodyContains;
  if (needle !== undefined && !body.includes(needle)) {
    throw new LifeboatError("CHECK_FAILED", `${what} returned HTTP ${status} but its body does not contain ${JSON.stringify(needle)}${excerpt(body)}`, {
      kind: "verification",
      details: { status },
    });
  }
  return { note: needle === undefined ? `HTTP ${status}` : `HTTP ${status}, body contains ${JSON.stringify(needle)}`, output: null };
}

const MAX_BODY_BYTES = 1024 * 1024;
const EXCERPT_CHARS = 200;

function prepare(check: HttpCheck, ctx: CheckContext): { url: URL; headers: Headers; shown: string } {
  const text = ctx.render(check.url);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new LifeboatError("CHECK_URL_INVALID", `http check url ${redactText(templateText(check.url))} is not a URL`, { kind: "usage" });
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new LifeboatError("CHECK_URL_INVALID", `http check url ${redactText(templateText(check.url))} must start with http:// or https://`, { kind: "usage" });
  }
  const headers = new Headers();
  for (const [name, value] of Object.entries(check.headers)) {
    const rendered = ctx.render(value);
    if (/^(authorization|proxy-authorization|cookie)$/i.test(name)) registerSecret(rendered);
    headers.set(name, rendered);
  }
  if (url.password) registerSecret(decodeURIComponent(url.password));
  // Shown with its user and a redacted password, sent without either.
  const shown = redactText(url.href);
  if (url.username || url.password) {
    const credentials = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
    if (!headers.has("authorization")) headers.set("authorization", `Basic ${Buffer.from(credentials).toString("base64")}`);
    url.username = "";
    url.password = "";
  }
  return { url, headers, shown };
}

/** The body as text, at most `maxBytes` of it (the rest is not read). */
async function readBody(response: Response, maxBytes: number): Promise<string> {
  if (!response.body) return "";
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < maxBytes) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.length;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  return Buffer.concat(chunks).subarray(0, maxBytes).toString("utf8");
}

/** Why a request failed, in words: undici says "fetch failed" and puts the reason in `cause`. */
function networkReason(error: unknown): string {
  const cause = (error as { cause?: unknown } | undefined)?.cause ?? error;
  const code = errorCode(cause);
  const reasons: Record<string, string> = {
    ECONNREFUSED: "connection refused (nothing listens there)",
    ECONNRESET: "the connection was reset",
    ENOTFOUND: "the host name was not found",
    EAI_AGAIN: "the host name could not be resolved",
    EHOSTUNREACH: "the host is unreachable",
    ENETUNREACH: "the network is unreachable",
    ETIMEDOUT: "connecting timed out",
    UND_ERR_CONNECT_TIMEOUT: "connecting timed out",
    UND_ERR_HEADERS_TIMEOUT: "no response headers arrived in time",
    UND_ERR_BODY_TIMEOUT: "the body stopped arriving",
    UND_ERR_SOCKET: "the server closed the connection",
  };
  const message = (cause as { message?: unknown } | undefined)?.message;
  if (code && reasons[code]) return reasons[code];
  if (code && /CERT|TLS|SSL|SELF_SIGNED|UNABLE_TO/i.test(code)) return `TLS failed: ${typeof message === "string" ? message : code}`;
  return redactText(typeof message === "string" && message ? message : String(cause));
}

function errorCode(error: unknown): string | undefined {
  const e = error as { code?: unknown; errors?: unknown[] } | undefined;
  if (typeof e?.code === "string") return e.code;
  // Several addresses tried (localhost: ::1 and 127.0.0.1): an AggregateError.
  if (Array.isArray(e?.errors)) for (const inner of e.errors) if (typeof (inner as { code?: unknown })?.code === "string") return (inner as { code: string }).code;
  return undefined;
}

function listStatuses(statuses: number[]): string {
  if (statuses.length === 1) return String(statuses[0]);
  return `one of ${statuses.join(", ")}`;
}

function excerpt(body: string): string {
  const text = body.replace(/\s+/g, " ").trim();
  if (!text) return "";
  return `: ${redactText(text.length > EXCERPT_CHARS ? `${text.slice(0, EXCERPT_CHARS)}…` : text)}`;
}
