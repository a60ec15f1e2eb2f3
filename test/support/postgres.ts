import { chmodSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runTool } from "../../src/exec/spawn.js";
import { locateTool, pgConfigBindir } from "../../src/exec/tools.js";
import { silentLogger } from "../../src/log/logger.js";
import { newRunId, provisionScratch, sweepScratch } from "../../src/scratch/environments.js";

/**
 * Real PostgreSQL for tests, built on Lifeboat's own `postgres` scratch kind:
 * each `startPostgres()` is an ephemeral cluster (initdb + pg_ctl, ~1.5 s) on
 * a free 127.0.0.1 port, superuser `postgres`, trust auth, with an empty
 * database `scratch`. Stop it in `afterAll`.
 *
 * All test clusters live under one scratch root of their own
 * (`<tmp>/lifeboat-test-scratch`, whatever LIFEBOAT_SCRATCH_DIR says), and
 * the first `startPostgres()` of each test file sweeps it: clusters left
 * running by a test process that was killed are stopped by the next run.
 * Concurrent test files never sweep each other's clusters (their owners are
 * alive).
 */
export interface TestPostgres {
  /** `postgresql://postgres@127.0.0.1:<port>/scratch` */
  url: string;
  port: number;
  /** Runs SQL (one or more statements) in `database` (default `scratch`); returns psql's unaligned, tuples-only output, trimmed. */
  sql(query: string, database?: string): Promise<string>;
  /** Stops the cluster and deletes it; idempotent. */
  stop(): Promise<void>;
}

export const TEST_SCRATCH_ROOT = join(tmpdir(), "lifeboat-test-scratch");

let swept: Promise<unknown> | undefined;

export async function startPostgres(options: { name?: string } = {}): Promise<TestPostgres> {
  mkdirSync(TEST_SCRATCH_ROOT, { recursive: true });
  chmodSync(TEST_SCRATCH_ROOT, 0o711); // the cluster's user (postgres, under root) must traverse it
  swept ??= sweepScratch({ root: TEST_SCRATCH_ROOT, log: silentLogger });
  await swept;
  const environment = await provisionScratch(
    { name: options.name ?? "test-pg", spec: { type: "postgres", server: undefined, runAs: "postgres", bin: undefined } },
    newRunId(),
    { root: TEST_SCRATCH_ROOT, log: silentLogger },
  );
  const url = environment.connection.url!;
  return {
    url,
    port: Number(environment.connection.port),
    sql: (query, database) => psql(database ? withDatabase(url, database) : url, query),
    stop: () => environment.teardown(),
  };
}

/** `psql -X -q -At -v ON_ERROR_STOP=1 -c <query>` against `url`: the rows of every statement (no command tags), trimmed. Fails with psql's stderr. */
export async function psql(url: string, query: string): Promise<string> {
  const psqlPath = await locateTool("psql", { fallback: pgConfigBindir });
  const { stdout } = await runTool({
    argv: [psqlPath, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", `--dbname=${url}`, "-c", query],
    env: { PGCONNECT_TIMEOUT: "10" },
    context: "running test SQL",
  });
  return stdout.trim();
}

/** The same server URL pointing at another database. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(database)}`;
  return u.toString();
}
