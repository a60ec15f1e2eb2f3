#!/usr/bin/env node
// The application smoke test plans/postgres-drill.yaml runs against the
// restored database: the queries the orders application depends on must work.
// Reads DATABASE_URL; needs psql on PATH. Exits non-zero on the first failure.
import { spawnSync } from "node:child_process";

const url = process.env.DATABASE_URL;
if (!url) {
  process.stderr.write("DATABASE_URL is not set\n");
  process.exit(2);
}

const checks = [
  ["customers can be looked up", "select count(*) > 0 from customers where email like '%@example.com'"],
  ["order totals compute", "select count(*) > 0 from sales.orders where sales.order_total(id) > 0"],
  ["the big-orders view answers", "select count(*) >= 0 from sales.big_orders"],
  ["new orders can be written", "begin; insert into sales.orders (customer_id) values ((select min(id) from customers)); rollback; select true"],
];

for (const [name, sql] of checks) {
  const result = spawnSync("psql", ["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", `--dbname=${url}`, "-c", sql], { encoding: "utf8" });
  const answer = (result.stdout ?? "").trim().split("\n").pop();
  if (result.status !== 0 || answer !== "t") {
    process.stderr.write(`smoke test failed: ${name}\n${result.stderr ?? ""}`);
    process.exit(1);
  }
  process.stdout.write(`ok ${name}\n`);
}
