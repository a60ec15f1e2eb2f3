import type { DatabaseConnection } from "./job.js";

/**
 * Database URLs, parsed into a `DatabaseConnection` and formatted back
 * without the password (which travels separately, in the tool's environment
 * or a 0600 option file, never in argv).
 *
 *   postgresql://user:pass@host:5432/db?sslmode=require   (also postgres://)
 *   postgresql://user@/db?host=/var/run/postgresql        (Unix socket directory)
 *   mariadb://user:pass@host:3306/db                      (also mysql://)
 *   mariadb://user@localhost/db?socket=/run/mysqld/mysqld.sock
 */
export type DatabaseFamily = "postgres" | "mariadb";

const SCHEMES: Record<DatabaseFamily, string[]> = { postgres: ["postgresql:", "postgres:"], mariadb: ["mariadb:", "mysql:"] };

export function parseDatabaseUrl(text: string, family: DatabaseFamily): { connection: DatabaseConnection } | { problem: string } {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { problem: `is not a URL; expected ${SCHEMES[family][0]}//user@host:port/database` };
  }
  if (!SCHEMES[family].includes(url.protocol)) {
    return { problem: `must start with ${SCHEMES[family].map((s) => `${s}//`).join(" or ")}` };
  }
  const database = decodeURIComponent(url.pathname.replace(/^\//, ""));
  if (!database || database.includes("/")) return { problem: "must name one database in its path, e.g. …/orders" };
  const options: Record<string, string> = {};
  let socket: string | undefined;
  for (const [key, value] of url.searchParams) {
    if ((family === "postgres" && key === "host") || (family === "mariadb" && key === "socket")) socket = value;
    else if (/pass|secret|token/i.test(key)) return { problem: `must not carry a secret in its query ("${key}")` };
    else if (family === "mariadb") return { problem: `has an unsupported option "${key}"; mariadb URLs take only socket=` };
    else options[key] = value;
  }
  return {
    connection: {
      host: url.hostname ? url.hostname.replace(/^\[|\]$/g, "") : undefined,
      port: url.port ? Number(url.port) : undefined,
      socket,
      user: url.username ? decodeURIComponent(url.username) : undefined,
      password: url.password ? decodeURIComponent(url.password) : undefined,
      database,
      options,
    },
  };
}

/** A libpq connection URL without the password, safe for argv and messages. */
export function postgresUrl(c: DatabaseConnection, database: string = c.database): string {
  const user = c.user ? `${encodeURIComponent(c.user)}@` : "";
  const host = c.host ? (c.host.includes(":") ? `[${c.host}]` : c.host) : "";
  const port = c.port ? `:${c.port}` : "";
  const query = new URLSearchParams(c.options);
  if (c.socket) query.set("host", c.socket);
  const search = query.toString();
  return `postgresql://${user}${host}${port}/${encodeURIComponent(database)}${search ? `?${search}` : ""}`;
}

/** A mariadb URL without the password, for messages and scratch connection details. */
export function mariadbUrl(c: DatabaseConnection, database: string = c.database): string {
  const user = c.user ? `${encodeURIComponent(c.user)}@` : "";
  const host = c.host ? (c.host.includes(":") ? `[${c.host}]` : c.host) : "localhost";
  const port = c.port ? `:${c.port}` : "";
  const search = c.socket ? `?${new URLSearchParams({ socket: c.socket }).toString()}` : "";
  return `mariadb://${user}${host}${port}/${encodeURIComponent(database)}${search}`;
}

/** Where the connection points, for messages: `orders on db.internal:5432`. */
export function describeConnection(c: DatabaseConnection): string {
  const where = c.socket ?? `${c.host ?? "localhost"}${c.port ? `:${c.port}` : ""}`;
  return `${c.database} on ${where}`;
}
