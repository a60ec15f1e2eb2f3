import http from "node:http";
import type { AddressInfo } from "node:net";

/**
 * An HTTP proxy in front of a real S3 server that injects the faults a real
 * server will not produce on demand: 503 SlowDown, connection resets, a 200
 * whose body is an S3 <Error>, 403, and stalls. Requests are forwarded with
 * their headers untouched, so SigV4 signatures (made for the proxy's host)
 * still verify upstream.
 */
export type Fault = "pass" | "slow-down" | "reset" | "error-200" | "forbidden" | "stall-response" | "stall-body";

export interface ProxiedRequest {
  method: string;
  /** Path and query, e.g. `/bucket/key?partNumber=2&uploadId=…`. */
  url: string;
  /** How many requests matching the same method and kind came before this one. */
  index: number;
}

export interface FaultProxy {
  endpoint: string;
  /** Requests seen, in order, with the fault applied to each. */
  log: Array<{ method: string; url: string; fault: Fault }>;
  close(): Promise<void>;
}

export async function startFaultProxy(upstream: string, choose: (request: ProxiedRequest) => Fault): Promise<FaultProxy> {
  const target = new URL(upstream);
  const counts = new Map<string, number>();
  const log: FaultProxy["log"] = [];
  const stalled = new Set<http.ServerResponse>();

  const server = http.createServer((req, res) => {
    const method = req.method ?? "GET";
    const url = req.url ?? "/";
    const kind = `${method} ${requestKind(url)}`;
    const index = counts.get(kind) ?? 0;
    counts.set(kind, index + 1);
    const fault = choose({ method, url, index });
    log.push({ method, url, fault });

    const consumeThen = (respond: () => void) => {
      req.resume();
      req.on("end", respond);
    };
    switch (fault) {
      case "reset":
        req.socket.destroy();
        return;
      case "slow-down":
        return consumeThen(() => s3Error(res, 503, "SlowDown", "Please reduce your request rate."));
      case "forbidden":
        return consumeThen(() => s3Error(res, 403, "AccessDenied", "Access Denied"));
      case "error-200":
        return consumeThen(() => s3Error(res, 200, "InternalError", "We encountered an internal error. Please try again."));
      case "stall-response":
        stalled.add(res);
        return consumeThen(() => {});
    }

    const upstreamReq = http.request(
      { host: target.hostname, port: target.port, method, path: url, headers: req.headers },
      (upstreamRes) => {
        res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
        if (fault === "stall-body") {
          // Headers sent, then silence: the client must notice on its own.
          stalled.add(res);
          res.flushHeaders();
          upstreamRes.resume();
          return;
        }
        upstreamRes.pipe(res);
      },
    );
    upstreamReq.on("error", () => res.destroy());
    req.pipe(upstreamReq);
  });

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    log,
    async close() {
      for (const res of stalled) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** CompleteMultipartUpload, UploadPart, CreateMultipartUpload, or a plain object request. */
function requestKind(url: string): string {
  const query = new URL(url, "http://x").searchParams;
  if (query.has("uploadId") && query.has("partNumber")) return "part";
  if (query.has("uploadId")) return "upload";
  if (query.has("uploads")) return "create-upload";
  if (query.has("list-type")) return "list";
  return "object";
}

function s3Error(res: http.ServerResponse, status: number, code: string, message: string): void {
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>fault-proxy</RequestId></Error>`;
  res.writeHead(status, { "content-type": "application/xml", "content-length": Buffer.byteLength(body) });
  res.end(body);
}
