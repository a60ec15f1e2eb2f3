import { execFileSync } from "node:child_process";
import { psql } from "./postgres.js";

/**
 * A realistic little shop database: tables with foreign keys and indexes,
 * serial and explicit sequences, a view, a function and a trigger, jsonb,
 * bytea, a large object and non-ASCII text. `rows` scales the order volume.
 */
export function shopSchema(rows = 2_000): string {
  return `
CREATE SCHEMA sales;
CREATE SEQUENCE sales.invoice_no START 1000 INCREMENT 7;
CREATE TABLE customers (
  id serial PRIMARY KEY,
  name text NOT NULL,
  email text UNIQUE,
  profile jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE products (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  title text NOT NULL,
  price numeric(10, 2) NOT NULL CHECK (price >= 0),
  photo bytea
);
CREATE TABLE sales.orders (
  id bigserial PRIMARY KEY,
  customer_id int NOT NULL REFERENCES customers(id),
  invoice bigint NOT NULL DEFAULT nextval('sales.invoice_no'),
  note text,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_customer ON sales.orders (customer_id, created_at DESC);
CREATE TABLE sales.order_items (
  order_id bigint NOT NULL REFERENCES sales.orders(id) ON DELETE CASCADE,
  product_id bigint NOT NULL REFERENCES products(id),
  quantity int NOT NULL,
  PRIMARY KEY (order_id, product_id)
);
CREATE TABLE audit (id serial PRIMARY KEY, what text NOT NULL, at timestamptz NOT NULL DEFAULT now());
CREATE FUNCTION sales.order_total(o bigint) RETURNS numeric LANGUAGE sql STABLE AS
  $$ SELECT coalesce(sum(i.quantity * p.price), 0) FROM sales.order_items i JOIN products p ON p.id = i.product_id WHERE i.order_id = o $$;
CREATE FUNCTION log_order() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN INSERT INTO audit (what) VALUES ('order ' || NEW.id); RETURN NEW; END $$;
CREATE TRIGGER orders_audit AFTER INSERT ON sales.orders FOR EACH ROW EXECUTE FUNCTION log_order();
CREATE VIEW sales.big_orders AS SELECT o.id, sales.order_total(o.id) AS total FROM sales.orders o WHERE sales.order_total(o.id) > 100;
COMMENT ON TABLE customers IS 'Kundschaft — 顧客 🛟';

INSERT INTO customers (name, email, profile)
  SELECT 'Zoë Ñúñez ' || i || ' 名前', 'c' || i || '@example.com', jsonb_build_object('tier', i % 3, 'tags', jsonb_build_array('a', 'ü', '🚀'))
  FROM generate_series(1, 200) i;
INSERT INTO products (title, price, photo)
  SELECT 'Product ' || i || ' Ærø', (i * 3.17)::numeric(10, 2), decode(md5(i::text) || md5((i * 7)::text), 'hex')
  FROM generate_series(1, 50) i;
INSERT INTO sales.orders (customer_id, note)
  SELECT 1 + (i % 200), CASE WHEN i % 5 = 0 THEN NULL ELSE 'note ' || repeat('x', i % 40) || ' «привет»' END
  FROM generate_series(1, ${rows}) i;
INSERT INTO sales.order_items (order_id, product_id, quantity)
  SELECT o.id, 1 + ((o.id * k) % 50), 1 + (o.id % 4) FROM sales.orders o, generate_series(1, 3) k
  ON CONFLICT DO NOTHING;
SELECT lo_from_bytea(424242, convert_to(repeat('large object payload ✓ ', 5000), 'UTF8'));
`;
}

/** The tables the fixture creates, for row counts and content checksums. */
export const SHOP_TABLES = ["customers", "products", "sales.orders", "sales.order_items", "audit"];

/** Per table: row count and an MD5 of its rows in a stable order; plus sequence positions and large objects. */
export async function fingerprint(url: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const table of SHOP_TABLES) {
    out[table] = await psql(url, `SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '-') FROM ${table} t`);
  }
  out.sequences = await psql(url, "SELECT string_agg(schemaname || '.' || sequencename || '=' || coalesce(last_value::text, 'null'), ',' ORDER BY schemaname, sequencename) FROM pg_sequences");
  out.largeObjects = await psql(url, "SELECT coalesce(string_agg(oid::text || ':' || md5(lo_get(oid)), ',' ORDER BY oid), '-') FROM pg_largeobject_metadata");
  out.view = await psql(url, "SELECT count(*) || ':' || coalesce(sum(total), 0) FROM sales.big_orders");
  return out;
}

/** `pg_dump --schema-only` of a database, without the lines that differ on every run. */
export function schemaOf(url: string, extra: string[] = []): string {
  const text = execFileSync("pg_dump", ["--schema-only", "--no-owner", "--no-privileges", ...extra, `--dbname=${url}`], { encoding: "utf8" });
  return text
    .split("\n")
    .filter((line) => !/^\\(un)?restrict /.test(line) && !line.startsWith("-- Dumped"))
    .join("\n");
}
