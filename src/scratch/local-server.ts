import { promises as fs } from "node:fs";
import { createServer } from "node:net";

/** Helpers the ephemeral servers (postgres, mariadb) share. */

/** A port free on 127.0.0.1 right now (another process may still take it before the server does: callers retry). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.unref();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      const port = typeof address === "object" && address ? address.port : 0;
      probe.close(() => (port ? resolve(port) : reject(new Error("no free port on 127.0.0.1"))));
    });
  });
}

/** What a server wrote to its log after `offset` (empty when there is no log yet). */
export async function readLogFrom(path: string, offset: number): Promise<string> {
  const text = await fs.readFile(path).catch(() => Buffer.alloc(0));
  return text.subarray(offset).toString("utf8");
}
