import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "../log/logger.js";
import { LifeboatError } from "../model/errors.js";
import { Layout } from "../storage/layout.js";
import type { ObjectStore } from "../storage/store.js";
import type { DaemonMetrics } from "./metrics.js";

/**
 * The daemon's HTTP endpoints, on node:http:
 * - `GET /metrics`: the Prometheus text exposition of `metrics`;
 * - `GET /healthz`: the `HealthReport` as JSON, 200 when `ok`, 503 when not
 *   (a storage unreachable, schedules not loaded yet);
 * - anything else: 404; methods other than GET and HEAD: 405.
 * HEAD answers like GET without the body. A handler that throws answers 500
 * and is logged; it never takes the process down.
 */
export interface HealthReport {
  /** Ready: every storage reachable and the schedules loaded. */
  ok: boolean;
  storage: Record<string, { reachable: boolean; error?: string }>;
  schedules: { loaded: boolean; jobs: number; drills: number };
  /** When the daemon started (ISO 8601). */
  startedAt: string;
}

export interface HealthServerOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  metrics: DaemonMetrics;
  health: () => Promise<HealthReport>;
  log: Logger;
}

export interface HealthServer {
  /** `http://host:port`, with the port actually bound. */
  url: string;
  port: number;
  /** Stops listening and closes idle and open connections. */
  close(): Promise<void>;
}

export async function startHealthServer(options: HealthServerOptions): Promise<HealthServer> {
  const { metrics, health, log } = options;
  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      log.error({ err: error, method: request.method, url: request.url }, "health server request failed");
      if (response.headersSent) {
        response.destroy();
        return;
      }
      send(request, response, 500, "application/json", `${JSON.stringify({ ok: false, error: (error as Error)?.message ?? String(error) })}\n`);
    });
  });
  server.on("clientError", (error, socket) => {
    log.debug({ err: error }, "health server client error");
    socket.destroy();
  });

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = new URL(request.url ?? "/", "http://localhost").pathname;
    if (path !== "/metrics" && path !== "/healthz") {
      send(request, response, 404, "text/plain; charset=utf-8", "not found: try /metrics or /healthz\n");
      return;
    }
    if (request.method !== "GET" && request.method !== "HEAD") {
      response.setHeader("allow", "GET, HEAD");
      send(request, response, 405, "text/plain; charset=utf-8", "method not allowed\n");
      return;
    }
    if (path === "/metrics") {
      send(request, response, 200, metrics.contentType, await metrics.render());
      return;
    }
    const report = await health();
    send(request, response, report.ok ? 200 : 503, "application/json", `${JSON.stringify(report)}\n`);
  }

  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error) => {
      reject(
        new LifeboatError("LISTEN_FAILED", `cannot listen on ${options.host}:${options.port} for /metrics and /healthz: ${error.message}`, {
          kind: "run",
          hint: "choose another daemon.listen address in the config",
          cause: error,
        }),
      );
    };
    server.once("error", onError);
    server.listen(options.port, options.host, () => {
      server.off("error", onError);
      resolve();
    });
  });
  server.on("error", (error) => log.error({ err: error }, "health server error"));

  const port = (server.address() as AddressInfo).port;
  const host = options.host.includes(":") ? `[${options.host}]` : options.host;
  return {
    url: `http://${host}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

function send(request: IncomingMessage, response: ServerResponse, status: number, contentType: string, body: string): void {
  const bytes = Buffer.from(body);
  response.writeHead(status, { "content-type": contentType, "content-length": bytes.length, "cache-control": "no-store" });
  response.end(request.method === "HEAD" ? undefined : bytes);
}

const DEFAULT_PROBE_TIMEOUT_MS = 5_000;

/**
 * Whether each store answers, cheaply: lists `<prefix>.lifeboat/health/`
 * (normally empty) and stops at the first object. A listing fails on a
 * missing bucket, denied credentials, an unreachable endpoint or a
 * filesystem root that is not a folder; a store that takes longer than
 * `timeoutMs` counts as unreachable. Never throws.
 */
export async function checkStorage(
  stores: Record<string, ObjectStore | { store: ObjectStore; layout: Layout }>,
  options: { timeoutMs?: number } = {},
): Promise<HealthReport["storage"]> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS;
  const entries = await Promise.all(
    Object.entries(stores).map(async ([name, entry]) => {
      // Under the storage's prefix: credentials scoped to `prod/*` may list nothing else.
      const { store, layout } = "store" in entry ? entry : { store: entry, layout: new Layout("") };
      return [name, await probeStore(store, layout.healthPrefix(), timeoutMs)] as const;
    }),
  );
  return Object.fromEntries(entries);
}

async function probeStore(store: ObjectStore, prefix: string, timeoutMs: number): Promise<{ reachable: boolean; error?: string }> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new Error(`no answer within ${timeoutMs} ms`);
      controller.abort(error);
      reject(error);
    }, timeoutMs);
    timer.unref();
  });
  const listing = (async () => {
    for await (const _ of store.list(prefix, { signal: controller.signal })) break;
  })();
  try {
    await Promise.race([listing, timeout]);
    return { reachable: true };
  } catch (error) {
    listing.catch(() => {});
    return { reachable: false, error: (error as Error)?.message ?? String(error) };
  } finally {
    clearTimeout(timer);
  }
}
