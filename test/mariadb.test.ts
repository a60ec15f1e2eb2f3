import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { createReadStream, createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runBackup } from "../src/backup/run-backup.js";
import { listBackups } from "../src/catalog/catalog.js";
import { silentLogger } from "../src/log/logger.js";
import type { BackupJob, DatabaseConnection } from "../src/model/job.js";
import { generateIdentity, parseIdentities } from "../src/pipeline/age/index.js";
import { runRestore } from "../src/restore/run-restore.js";
import { listScratch, newRunId, sweepScratch, type ScratchEnvironment } from "../src/scratch/environments.js";
import { retargetAlterDatabase } from "../src/sources/mariadb.js";
import { Layout } from "../src/storage/layout.js";
import type { ObjectStore } from "../src/storage/store.js";
import { tempDir } from "./support/builders.js";
import {
  accepts,
  connectionTo,
  dataOf,
  databaseUrl,
  holdWriteLock,
  schemaOf,
  scratchRoot,
  sql,
  sqlScript,
  startMariadb,
  tableChecksums,
} from "./support/mariadb.js";
import { storesUnderTest } from "./support/stores.js";
import { capturingLogger } from "./support/logs.js";

/**
 * MariaDB end to end, against real servers that Lifeboat's own `mariadb`
 * scratch kind starts on 127.0.0.1: a realistic source database is backed up
 * (mariadb-dump | zstd | age), restored into a fresh server, and compared
 * row by row, checksum by checksum and schema by schema with the source.
 */
const key = generateIdentity();
const identities = parseIdentities(key.identity);
/** Everything the option-file syntax treats specially: quotes, #, ;, =, a backslash, spaces, non-ASCII. */
const PASSWORD = `p@ss "w#rd' \\ ünï 🚀 ;x=y `;
const layout = new Layout("mariadb/");

function mariadbJob(name: string, connection: DatabaseConnection, overrides: Partial<BackupJob> = {}): BackupJob {
  return { name, source: { type: "mariadb", connection, bin: undefined }, storage: "test", compression: "zstd", encrypt: true, allowEmpty: false, overlap: "skip", catchUp: "one", ...overrides };
}

/** A SQL string literal (backslash escapes are on in the servers' default sql_mode). */
function literal(text: string): string {
  return `'${text.replace(/\\/g, "\\\\").replace(/'/g, "''")}'`;
}

/** The shop: foreign keys, indexes (unique, composite, full-text), AUTO_INCREMENT with gaps, a view, routines, triggers, an event, BLOBs, utf8mb4. */
const SHOP_SCHEMA = `
CREATE TABLE customers (
  id INT AUTO_INCREMENT PRIMARY KEY,
  email VARCHAR(190) NOT NULL,
  name VARCHAR(200) NOT NULL,
  created_at DATETIME(6) NOT NULL,
  UNIQUE KEY by_email (email),
  KEY by_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE TABLE products (
  id INT AUTO_INCREMENT PRIMARY KEY,
  sku CHAR(12) CHARACTER SET ascii NOT NULL,
  title VARCHAR(300) NOT NULL,
  price DECIMAL(10,2) NOT NULL,
  image MEDIUMBLOB NULL,
  digest BINARY(32) NULL,
  UNIQUE KEY by_sku (sku),
  FULLTEXT KEY ft_title (title)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE orders (
  id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
  customer_id INT NOT NULL,
  created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  status ENUM('new','paid','shipped') NOT NULL DEFAULT 'new',
  note TEXT NULL,
  KEY by_created (created_at),
  CONSTRAINT orders_customer FOREIGN KEY (customer_id) REFERENCES customers (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE order_items (
  order_id BIGINT UNSIGNED NOT NULL,
  product_id INT NOT NULL,
  qty SMALLINT NOT NULL,
  PRIMARY KEY (order_id, product_id),
  KEY by_product (product_id),
  CONSTRAINT items_order FOREIGN KEY (order_id) REFERENCES orders (id) ON DELETE CASCADE,
  CONSTRAINT items_product FOREIGN KEY (product_id) REFERENCES products (id)
) ENGINE=InnoDB;
CREATE TABLE price_history (
  product_id INT NOT NULL PRIMARY KEY,
  price DECIMAL(10,2) NOT NULL
) ENGINE=InnoDB WITH SYSTEM VERSIONING;
CREATE TABLE audit_log (
  id INT AUTO_INCREMENT PRIMARY KEY,
  at DATETIME NOT NULL,
  what VARCHAR(500) NOT NULL
) ENGINE=Aria DEFAULT CHARSET=utf8mb4;

INSERT INTO customers (email, name, created_at)
  SELECT CONCAT('c', seq, '@example.org'), CONCAT(ELT(1 + seq % 4, 'Zoë', 'Ünal', '李雷', 'Łucja 🚀'), ' #', seq), '2026-01-01' + INTERVAL seq MINUTE + INTERVAL seq MICROSECOND
  FROM seq_1_to_2000;
INSERT INTO products (sku, title, price, image, digest)
  SELECT CONCAT('SKU-', LPAD(seq, 8, '0')), CONCAT('Product ', seq, ' — “quoted” \\\\ backslash \\'s'), seq * 1.25, RANDOM_BYTES(1 + seq % 1000), UNHEX(SHA2(seq, 256))
  FROM seq_1_to_300;
INSERT INTO price_history SELECT id, price FROM products;
UPDATE price_history SET price = price * 2 WHERE product_id <= 10;
UPDATE products SET image = NULL, digest = NULL WHERE id = 7;
UPDATE products SET image = (SELECT GROUP_CONCAT(CHAR(seq) SEPARATOR '') FROM seq_0_to_255) WHERE id = 8;
UPDATE products SET image = RANDOM_BYTES(1024) WHERE id = 9;
UPDATE products SET image = CONCAT(REPEAT(RANDOM_BYTES(1000), 2000), 'end') WHERE id = 10;
INSERT INTO orders (customer_id, created_at, status, note)
  SELECT 1 + seq % 2000, '2026-02-01 00:00:00' + INTERVAL seq SECOND, ELT(1 + seq % 3, 'new', 'paid', 'shipped'), IF(seq % 5 = 0, NULL, CONCAT('line one\\nline two\\ttab ', seq, ' 🙂'))
  FROM seq_1_to_5000;
INSERT INTO order_items (order_id, product_id, qty)
  SELECT o.id, 1 + (o.id * 7 + s.seq) % 300, 1 + s.seq FROM orders o JOIN seq_1_to_3 s;
DELETE FROM orders WHERE id % 97 = 0;
DELETE FROM customers WHERE id > 1990;

CREATE VIEW order_totals AS
  SELECT o.id AS order_id, o.customer_id, SUM(i.qty * p.price) AS total
  FROM orders o JOIN order_items i ON i.order_id = o.id JOIN products p ON p.id = i.product_id
  GROUP BY o.id, o.customer_id;

DELIMITER //
CREATE FUNCTION order_total(oid BIGINT UNSIGNED) RETURNS DECIMAL(14,2) READS SQL DATA
  RETURN (SELECT total FROM order_totals WHERE order_id = oid)//
CREATE PROCEDURE place_order(IN customer INT, IN product INT, OUT new_id BIGINT UNSIGNED)
BEGIN
  INSERT INTO orders (customer_id) VALUES (customer);
  SET new_id = LAST_INSERT_ID();
  INSERT INTO order_items (order_id, product_id, qty) VALUES (new_id, product, 1);
END//
CREATE TRIGGER orders_default_note BEFORE INSERT ON orders FOR EACH ROW
  SET NEW.note = IFNULL(NEW.note, 'placed by trigger')//
CREATE TRIGGER orders_audit AFTER INSERT ON orders FOR EACH ROW
  INSERT INTO audit_log (at, what) VALUES (NOW(), CONCAT('order ', NEW.id))//
CREATE EVENT purge_audit ON SCHEDULE EVERY 1 HOUR STARTS '2030-01-01 00:00:00' DO
  DELETE FROM audit_log WHERE at < NOW() - INTERVAL 30 DAY//
DELIMITER ;
INSERT INTO audit_log (at, what) SELECT '2026-03-01' + INTERVAL seq HOUR, CONCAT('event ', seq) FROM seq_1_to_100;
`;

describe("mariadb: backup and restore against real servers", () => {
  let work: string;
  let root: string;
  let source: ScratchEnvironment;
  let target: ScratchEnvironment;
  let store: ObjectStore;
  let cleanupStore: () => void;
  /** The shop on the source server, as the application's user. */
  let shop: DatabaseConnection;
  let shopUrl: string;

  beforeAll(async () => {
    ({ work, root } = scratchRoot());
    // Side by side, and both settled before going on (a failed start must not leave the other one running).
    const started = await Promise.allSettled([startMariadb(root, "source"), startMariadb(root, "target")]);
    const [first, second] = started;
    if (first?.status === "fulfilled") source = first.value;
    if (second?.status === "fulfilled") target = second.value;
    for (const s of started) if (s.status === "rejected") throw s.reason;
    ({ store, cleanup: cleanupStore } = await storesUnderTest()[0]!.open());
    const admin = databaseUrl(source, "");
    // The routines and triggers are created under utf8mb4, then the database's
    // default changes: mariadb-dump then brackets them with ALTER DATABASE.
    sql(admin, "CREATE DATABASE shop CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci; CREATE DATABASE locked; CREATE DATABASE empty");
    sqlScript(databaseUrl(source, "shop"), `${SHOP_SCHEMA}\nALTER DATABASE shop CHARACTER SET latin1 COLLATE latin1_swedish_ci;`);
    sql(
      admin,
      `CREATE USER 'shop'@'127.0.0.1' IDENTIFIED BY ${literal(PASSWORD)};
       GRANT ALL PRIVILEGES ON shop.* TO 'shop'@'127.0.0.1';
       GRANT ALL PRIVILEGES ON locked.* TO 'shop'@'127.0.0.1';
       GRANT ALL PRIVILEGES ON empty.* TO 'shop'@'127.0.0.1';
       GRANT SELECT ON mysql.proc TO 'shop'@'127.0.0.1'`,
    );
    shop = connectionTo(source, "shop", "shop", PASSWORD);
    shopUrl = databaseUrl(source, "shop");
  });

  afterAll(async () => {
    await Promise.allSettled([source?.teardown(), target?.teardown()]);
    cleanupStore?.();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  /** Runs `body` with TMPDIR pointing at a fresh folder (where option files go), and returns that folder. */
  async function withTmpdir<T>(body: (dir: string) => Promise<T>): Promise<{ dir: string; result: T }> {
    const dir = join(work, `tmp-${Math.random().toString(16).slice(2)}`);
    mkdirSync(dir);
    const previous = process.env.TMPDIR;
    process.env.TMPDIR = dir;
    try {
      return { dir, result: await body(dir) };
    } finally {
      if (previous === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = previous;
    }
  }

  it("backs up a realistic database and restores it into a fresh scratch server: rows, checksums and schema equal the source", async () => {
    const job = mariadbJob("shop", shop);
    const logs = capturingLogger();
    const before = new Date();
    const { dir: optionDir, result } = await withTmpdir(() => runBackup({ job, store, layout, recipients: [key.recipient], log: logs.log }));
    const after = new Date();
    const manifest = result.manifest;

    expect(manifest.codec).toEqual(["sql", "zstd", "age"]);
    expect(manifest.objects.map((o) => o.key)).toEqual(["data.sql.zst.age"]);
    expect(manifest.source).toMatchObject({ kind: "mariadb", description: `mariadb: shop on 127.0.0.1:${source.connection.port}` });
    expect(manifest.source.serverVersion).toMatch(/^10\.\d+\.\d+-MariaDB/);
    expect(manifest.source.tool).toMatch(/^(mariadb-dump|mysqldump)\s+Ver /);
    const consistentAt = new Date(manifest.consistentAt).getTime();
    expect(consistentAt).toBeGreaterThanOrEqual(before.getTime());
    expect(consistentAt).toBeLessThanOrEqual(after.getTime());
    expect(consistentAt).toBeLessThanOrEqual(new Date(manifest.finishedAt).getTime());
    expect(manifest.objects[0]!.sourceBytes).toBeGreaterThan(2_000_000);
    // The Aria table cannot be part of the InnoDB snapshot, and the backup says so.
    expect(manifest.warnings).toEqual([
      expect.stringMatching(/non-transactional.*: audit_log \(Aria\)$/),
      "system-versioned tables are backed up without their history: price_history",
    ]);
    expect(manifest.status).toBe("succeeded");
    // The password went to an option file that is gone again, never to the logs.
    expect(readdirSync(optionDir)).toEqual([]);
    expect(logs.text()).toContain("backup stored");
    expect(logs.text()).not.toContain(PASSWORD.trim());

    const restoredUrl = target.connection.url!;
    const restored = await runRestore({ job, store, layout, identities, selector: {}, target: { location: restoredUrl, force: false, scratch: true } });
    expect(restored.target).toBe(`database scratch on 127.0.0.1:${target.connection.port}`);

    const sourceChecksums = tableChecksums(shopUrl);
    expect(Object.keys(sourceChecksums).sort()).toEqual(["audit_log", "customers", "order_items", "orders", "price_history", "products"]);
    expect(sourceChecksums.orders!.rows).toBeGreaterThan(4900);
    expect(sourceChecksums.order_items!.rows).toBe(sourceChecksums.orders!.rows * 3);
    expect(tableChecksums(restoredUrl)).toEqual(sourceChecksums);
    expect(dataOf(restoredUrl)).toEqual(dataOf(shopUrl));
    expect(schemaOf(restoredUrl)).toEqual(schemaOf(shopUrl));
    // The database's own default came back too (from the retargeted ALTER DATABASE lines).
    const charset = "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = DATABASE()";
    expect(sql(restoredUrl, charset)).toBe("latin1\tlatin1_swedish_ci");

    // The restored objects work: a non-ASCII row, the largest BLOB, the view, the function, the procedure and its triggers.
    expect(sql(restoredUrl, "SELECT name FROM customers WHERE id = 3")).toBe("Łucja 🚀 #3");
    expect(sql(restoredUrl, "SELECT LENGTH(image), SHA2(image, 256) FROM products WHERE id = 10")).toBe(sql(shopUrl, "SELECT LENGTH(image), SHA2(image, 256) FROM products WHERE id = 10"));
    expect(sql(restoredUrl, "SELECT HEX(image) FROM products WHERE id = 8")).toBe(sql(shopUrl, "SELECT HEX(image) FROM products WHERE id = 8"));
    expect(sql(restoredUrl, "SELECT order_total(42), (SELECT COUNT(*) FROM order_totals)")).toBe(sql(shopUrl, "SELECT order_total(42), (SELECT COUNT(*) FROM order_totals)"));
    expect(sql(restoredUrl, "SELECT EVENT_NAME, STATUS FROM information_schema.EVENTS WHERE EVENT_SCHEMA = DATABASE()")).toBe("purge_audit\tENABLED");
    const auditBefore = Number(sql(restoredUrl, "SELECT COUNT(*) FROM audit_log"));
    const placed = sql(restoredUrl, "CALL place_order(5, 9, @id); SELECT note, status, (SELECT COUNT(*) FROM order_items WHERE order_id = @id) FROM orders WHERE id = @id");
    expect(placed).toBe("placed by trigger\tnew\t1");
    expect(Number(sql(restoredUrl, "SELECT COUNT(*) FROM audit_log"))).toBe(auditBefore + 1);
    expect(sql(restoredUrl, "SELECT MAX(id) > 5000 FROM orders")).toBe("1"); // AUTO_INCREMENT continued past the source's counter
  });

  it("stores a SQL script that age, zstd and the mariadb client restore by hand, into any database", async () => {
    const job = mariadbJob("by-hand", shop);
    const { manifest } = await runBackup({ job, store, layout, recipients: [key.recipient] });
    const stored = join(work, "by-hand.sql.zst.age");
    await pipeline(await store.get(layout.objectKey(job.name, manifest.id, manifest.objects[0]!.key)), createWriteStream(stored));
    const keyFile = join(work, "identity.txt");
    writeFileSync(keyFile, `${key.identity}\n`, { mode: 0o600 });
    const script = join(work, "by-hand.sql");
    const age = spawnSync("age", ["-d", "-i", keyFile, "-o", join(work, "by-hand.sql.zst"), stored]);
    expect(age.status, age.stderr.toString()).toBe(0);
    const zstd = spawnSync("zstd", ["-d", "-q", "-f", join(work, "by-hand.sql.zst"), "-o", script]);
    expect(zstd.status, zstd.stderr.toString()).toBe(0);
    const text = readFileSync(script, "utf8");
    expect(text).not.toMatch(/^USE |^CREATE DATABASE /m);
    expect(text).not.toMatch(/^ALTER DATABASE `/m);

    const byHand = databaseUrl(target, "restored_by_hand");
    sql(databaseUrl(target, ""), "CREATE DATABASE restored_by_hand");
    const u = new URL(byHand);
    const client = spawn("mariadb", ["--no-defaults", "-h", u.hostname, "-P", u.port, "-u", "root", "restored_by_hand"], { stdio: ["pipe", "ignore", "pipe"] });
    let stderr = "";
    client.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    await pipeline(createReadStream(script), client.stdin);
    const [code] = (await once(client, "close")) as [number];
    expect(code, stderr).toBe(0);
    expect(tableChecksums(byHand)).toEqual(tableChecksums(shopUrl));
    expect(dataOf(byHand)).toEqual(dataOf(shopUrl));
  });

  it("round-trips through an S3 server too, into a new database next to the source, as the job's user with the job's password", async () => {
    const s3 = storesUnderTest().find((s) => s.server);
    expect(s3, "no S3 server is running").toBeDefined();
    const opened = await s3!.open();
    try {
      const job = mariadbJob("via-s3", shop);
      await runBackup({ job, store: opened.store, layout, recipients: [key.recipient] });
      // SET USER: the views, routines and triggers keep their DEFINER (root), which only a privileged user may set.
      sql(databaseUrl(source, ""), "GRANT ALL PRIVILEGES ON shop_copy.* TO 'shop'@'127.0.0.1'; GRANT SET USER ON *.* TO 'shop'@'127.0.0.1'");
      const schemaBefore = schemaOf(shopUrl);
      // No password in the URL: same server and user as the job, so the job's password is used.
      const copy = databaseUrl(source, "shop_copy", "shop");
      const restored = await runRestore({ job, store: opened.store, layout, identities, selector: {}, target: { location: copy, force: false } });
      expect(restored.target).toBe(`database shop_copy on 127.0.0.1:${source.connection.port}`);
      const copyAsRoot = databaseUrl(source, "shop_copy");
      expect(tableChecksums(copyAsRoot)).toEqual(tableChecksums(shopUrl));
      expect(schemaOf(copyAsRoot)).toEqual(schemaBefore);
      expect(schemaOf(shopUrl)).toEqual(schemaBefore);
    } finally {
      opened.cleanup();
    }
  });

  it("fails a restore the server rejects, naming the client and the server's error", async () => {
    // Megabytes of script: the client gives up long before the end, and its error (not the echo
    // of it in the stream it stopped reading, nor zstd's) is what the restore reports.
    sql(databaseUrl(source, ""), "CREATE DATABASE refused");
    sql(databaseUrl(source, "refused"), "CREATE TABLE t (id INT PRIMARY KEY, b BLOB); INSERT INTO t SELECT seq, RANDOM_BYTES(1000) FROM seq_1_to_3000; CREATE VIEW v AS SELECT id FROM t");
    const job = mariadbJob("rejected", connectionTo(source, "refused"));
    await runBackup({ job, store, layout, recipients: [key.recipient] });
    sql(databaseUrl(target, ""), "CREATE DATABASE read_only; CREATE USER 'reader'@'127.0.0.1'; GRANT SELECT ON read_only.* TO 'reader'@'127.0.0.1'");
    const location = databaseUrl(target, "read_only", "reader");
    await expect(runRestore({ job, store, layout, identities, selector: {}, target: { location, force: false } })).rejects.toMatchObject({
      code: "TOOL_FAILED",
      message: expect.stringMatching(
        new RegExp(`^mariadb failed with exit code 1 \\(restoring job "rejected" into read_only on 127\\.0\\.0\\.1:${target.connection.port}\\)\\n[\\s\\S]*ERROR 1142 .*command denied to user 'reader'`),
      ),
    });
    expect(sql(databaseUrl(target, "read_only"), "SHOW TABLES")).toBe("");
    // Definers are kept: restoring them as an ordinary user fails, with a hint.
    sql(databaseUrl(target, ""), "CREATE DATABASE plain_user; CREATE USER 'plain'@'127.0.0.1'; GRANT ALL PRIVILEGES ON plain_user.* TO 'plain'@'127.0.0.1'");
    await expect(
      runRestore({ job, store, layout, identities, selector: {}, target: { location: databaseUrl(target, "plain_user", "plain"), force: false } }),
    ).rejects.toMatchObject({ code: "TOOL_FAILED", message: expect.stringContaining("ERROR 1227"), hint: expect.stringContaining("SET USER") });
  });

  it("drops a target database it created when the restore fails half-way", async () => {
    // Incompressible rows, so the stored object spans many age chunks (64 KiB) and zstd reads (128 KiB).
    const bulky = databaseUrl(source, "bulky");
    sql(databaseUrl(source, ""), "CREATE DATABASE bulky");
    sql(bulky, "CREATE TABLE a_meta (k VARCHAR(10) PRIMARY KEY); INSERT INTO a_meta VALUES ('x'); CREATE TABLE b_blobs (id INT PRIMARY KEY, b BLOB); INSERT INTO b_blobs SELECT seq, RANDOM_BYTES(1000) FROM seq_1_to_1000");
    const job = mariadbJob("damaged", connectionTo(source, "bulky"));
    const { manifest } = await runBackup({ job, store, layout, recipients: [key.recipient] });
    const object = manifest.objects[0]!;
    const objectKey = layout.objectKey(job.name, manifest.id, object.key);
    const bytes = Buffer.concat(await (await store.get(objectKey)).toArray());
    expect(bytes.length).toBeGreaterThan(600_000);
    bytes[bytes.length - 4096]! ^= 0x01;
    await store.put(objectKey, Readable.from([bytes]));

    const server = databaseUrl(target, "");
    const counters = () => sql(server, "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME IN ('COM_CREATE_DB', 'COM_CREATE_TABLE', 'COM_DROP_DB') ORDER BY VARIABLE_NAME").split("\n").map(Number);
    const [created, tables, dropped] = counters();
    // The bytes before the damage arrive first and the rest a moment later, so the client is well under way.
    const slow: ObjectStore = {
      kind: store.kind,
      description: store.description,
      put: (k, body, o) => store.put(k, body, o),
      get: async (k, o) => (k === objectKey ? Readable.from(pausedAt(await store.get(k, o), Math.floor(bytes.length / 2), 1_000)) : store.get(k, o)),
      head: (k) => store.head(k),
      list: (prefix, o) => store.list(prefix, o),
      delete: (keys) => store.delete(keys),
      probe: (prefix) => store.probe(prefix),
      putConditional: (k, body, condition) => store.putConditional(k, body, condition),
      getSmall: (k, max) => store.getSmall(k, max),
      listPendingUploads: (prefix) => store.listPendingUploads(prefix),
      abortPendingUpload: (upload) => store.abortPendingUpload(upload),
      proveImmutability: (prefix) => store.proveImmutability(prefix),
    };
    const location = databaseUrl(target, "never_finished");
    await expect(runRestore({ job, store: slow, layout, identities, selector: {}, target: { location, force: false } })).rejects.toMatchObject({
      code: expect.stringMatching(/^(VERIFY_HASH_MISMATCH|AGE_PAYLOAD_CORRUPT)$/),
    });
    // The database was created, tables went in, and it was dropped again.
    const [createdAfter, tablesAfter, droppedAfter] = counters();
    expect([createdAfter! - created!, droppedAfter! - dropped!]).toEqual([1, 1]);
    expect(tablesAfter! - tables!).toBeGreaterThan(0);
    expect(sql(server, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'never_finished'")).toBe("0");
  });

  it("refuses a non-empty target without force and leaves it untouched; with force replaces the backup's tables and keeps the others", async () => {
    const job = mariadbJob("force", shop);
    await runBackup({ job, store, layout, recipients: [key.recipient] });
    const occupied = databaseUrl(target, "occupied");
    sql(databaseUrl(target, ""), "CREATE DATABASE occupied");
    sql(occupied, "CREATE TABLE customers (id INT PRIMARY KEY, stale VARCHAR(10)); INSERT INTO customers VALUES (1, 'stale'); CREATE TABLE keep_me (v TEXT); INSERT INTO keep_me VALUES ('precious')");
    const before = { schema: schemaOf(occupied), data: dataOf(occupied) };

    const refused = runRestore({ job, store, layout, identities, selector: {}, target: { location: occupied, force: false } });
    await expect(refused).rejects.toMatchObject({
      code: "RESTORE_TARGET_NOT_EMPTY",
      kind: "usage",
      message: `restore target database occupied on 127.0.0.1:${target.connection.port} is not empty (2 tables or views)`,
      hint: expect.stringContaining("--force"),
    });
    expect({ schema: schemaOf(occupied), data: dataOf(occupied) }).toEqual(before);

    await runRestore({ job, store, layout, identities, selector: {}, target: { location: occupied, force: true } });
    const { keep_me: kept, ...restored } = tableChecksums(occupied);
    expect(restored).toEqual(tableChecksums(shopUrl));
    expect(kept?.rows).toBe(1);
    expect(sql(occupied, "SELECT v FROM keep_me")).toBe("precious");
  });

  it("needs a target database for a restore", async () => {
    const job = mariadbJob("no-target", shop);
    await runBackup({ job, store, layout, recipients: [key.recipient] });
    await expect(runRestore({ job, store, layout, identities, selector: {}, target: { location: undefined, force: false } })).rejects.toMatchObject({
      code: "RESTORE_NO_TARGET",
      kind: "usage",
    });
    await expect(runRestore({ job, store, layout, identities, selector: {}, target: { location: "postgresql://x@y/z", force: false } })).rejects.toMatchObject({
      code: "RESTORE_TARGET_INVALID",
    });
  });

  it("fails an empty database with BACKUP_EMPTY unless the job allows empty backups", async () => {
    const job = mariadbJob("empty", connectionTo(source, "empty", "shop", PASSWORD));
    await expect(runBackup({ job, store, layout, recipients: [key.recipient] })).rejects.toMatchObject({
      code: "BACKUP_EMPTY",
      message: expect.stringContaining("has no tables"),
    });
    expect(await listBackups(store, layout, "empty")).toEqual([]);
    const { manifest } = await runBackup({ job: { ...job, allowEmpty: true }, store, layout, recipients: [key.recipient] });
    expect(manifest.status).toBe("succeeded");
  });

  it("fails on a database that does not exist, naming it", async () => {
    const job = mariadbJob("missing-db", connectionTo(source, "no_such_db", "root"));
    await expect(runBackup({ job, store, layout, recipients: [key.recipient] })).rejects.toMatchObject({
      code: "SOURCE_MISSING",
      message: `database no_such_db on 127.0.0.1:${source.connection.port} does not exist (backing up job "missing-db")`,
    });
  });

  it("fails fast on a wrong password, naming the tool, and the password shows up nowhere", async () => {
    const wrong = "not-the-password-0451";
    const job = mariadbJob("wrong-password", { ...shop, password: wrong });
    const logs = capturingLogger();
    const started = performance.now();
    const { dir, result } = await withTmpdir(() =>
      runBackup({ job, store, layout, recipients: [key.recipient], log: logs.log }).then(
        () => undefined,
        (e: unknown) => e,
      ),
    );
    expect(performance.now() - started).toBeLessThan(5_000);
    const error = result as { code: string; message: string; hint?: string };
    expect(error).toMatchObject({
      code: "TOOL_FAILED",
      message: expect.stringMatching(/^mariadb failed with exit code 1 \(backing up job "wrong-password"\)\n.*Access denied for user 'shop'@'127\.0\.0\.1' \(using password: YES\)/),
      hint: expect.stringContaining("password"),
    });
    for (const text of [error.message, JSON.stringify(error), logs.text()]) {
      expect(text).not.toContain(wrong);
      expect(text).not.toContain(PASSWORD.trim());
    }
    expect(readdirSync(dir)).toEqual([]);
    expect(await listBackups(store, layout, "wrong-password")).toEqual([]);
  });

  it("fails fast when the server is unreachable", async () => {
    const closedPort = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, "127.0.0.1", () => {
        const port = (probe.address() as { port: number }).port;
        probe.close(() => resolve(port));
      });
    });
    const job = mariadbJob("unreachable", { ...shop, port: closedPort });
    const started = performance.now();
    await expect(runBackup({ job, store, layout, recipients: [key.recipient] })).rejects.toMatchObject({
      code: "TOOL_FAILED",
      message: expect.stringMatching(/^mariadb failed with exit code 1 \(backing up job "unreachable"\)\n.*Can't connect to server on '127\.0\.0\.1'/),
      hint: expect.stringContaining("host, port or socket"),
    });
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it("reports a missing tool when bin: points at a folder without it", async () => {
    const empty = tempDir("lifeboat-empty-bin-");
    try {
      const job: BackupJob = { ...mariadbJob("no-tool", shop), source: { type: "mariadb", connection: shop, bin: empty } };
      await expect(runBackup({ job, store, layout, recipients: [key.recipient] })).rejects.toMatchObject({
        code: "TOOL_NOT_FOUND",
        message: `mariadb-dump or mysqldump was not found in ${empty} (bin)`,
      });
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it("fails and stores nothing when mariadb-dump is killed mid-dump; the password is only ever in a 0600 option file", async () => {
    const locked = databaseUrl(source, "locked");
    sql(locked, "CREATE TABLE a_rows (id INT PRIMARY KEY, v VARCHAR(100)); INSERT INTO a_rows SELECT seq, REPEAT('x', 80) FROM seq_1_to_20000; CREATE TABLE z_locked (id INT PRIMARY KEY)");
    const lock = await holdWriteLock(locked, "z_locked");
    try {
      const job = mariadbJob("killed", connectionTo(source, "locked", "shop", PASSWORD));
      const { dir, result } = await withTmpdir(async (tmp) => {
        const running = runBackup({ job, store, layout, recipients: [key.recipient] }).then(
          () => undefined,
          (e: unknown) => e,
        );
        // mariadb-dump has written a_rows and now waits for the lock on z_locked.
        const waiting = "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE STATE = 'Waiting for table metadata lock' AND INFO LIKE '%z_locked%'";
        await waitFor(() => sql(databaseUrl(source, ""), waiting) === "1");
        const pid = childPids().find((p) => /mariadb-dump|mysqldump/.test(commandLine(p)[0] ?? ""));
        expect(pid).toBeDefined();
        const argv = commandLine(pid!);
        expect(argv[1]).toMatch(/^--defaults-extra-file=/);
        expect(argv.join(" ")).not.toContain(PASSWORD.trim());
        const optionFile = argv[1]!.slice("--defaults-extra-file=".length);
        expect(optionFile.startsWith(tmp)).toBe(true);
        expect(statSync(optionFile).mode & 0o777).toBe(0o600);
        expect(statSync(join(optionFile, "..")).mode & 0o777).toBe(0o700);
        expect(readFileSync(optionFile, "utf8")).toContain("[client]\npassword=");
        process.kill(pid!, "SIGKILL");
        return running;
      });
      expect(result).toMatchObject({ code: "TOOL_KILLED", message: expect.stringMatching(/^mariadb-dump was killed by SIGKILL \(backing up job "killed"\)/) });
      expect(readdirSync(dir)).toEqual([]);
      expect(await listBackups(store, layout, "killed")).toEqual([]);
      const left: string[] = [];
      for await (const o of store.list(layout.jobFolder("killed"))) left.push(o.key);
      expect(left).toEqual([]);
    } finally {
      await lock.release();
    }
  });
});

describe("mariadb scratch: an ephemeral server that always goes away", () => {
  let work: string;
  let root: string;
  beforeAll(() => {
    ({ work, root } = scratchRoot("lifeboat-mariadb-scratch-"));
  });
  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const recordOf = (id: string) => JSON.parse(readFileSync(join(root, `${id}.json`), "utf8")) as { resource: Record<string, unknown> };

  it("serves a scratch database on 127.0.0.1 as an unprivileged user, and teardown stops it and removes everything", async () => {
    const env = await startMariadb(root, "teardown");
    const port = Number(env.connection.port);
    const { pid, datadir } = recordOf(env.id).resource as { pid: number; datadir: string };
    expect(env.connection).toMatchObject({ url: `mariadb://root@127.0.0.1:${port}/scratch`, host: "127.0.0.1", user: "root", database: "scratch" });
    expect(env.connectHint).toBe(`mariadb -h 127.0.0.1 -P ${port} -u root scratch`);
    expect(env.versions.server).toMatch(/MariaDB/);
    expect(datadir).toBe(join(root, env.id, "data"));
    expect(processRunning(pid)).toBe(true);
    expect(readFileSync(`/proc/${pid}/status`, "utf8")).toMatch(new RegExp(`^Uid:\\s+${uidOf("mysql")}\\s`, "m"));
    expect(sql(env.connection.url!, "SELECT DATABASE(), @@bind_address, @@event_scheduler")).toBe("scratch\t127.0.0.1\tOFF");

    await env.teardown();
    expect(processRunning(pid)).toBe(false);
    expect(await accepts(port)).toBe(false);
    expect(existsSync(join(root, env.id))).toBe(false);
    expect(existsSync(join(root, `${env.id}.json`))).toBe(false);
    await env.teardown(); // idempotent
  });

  it("outlives an owner that was SIGKILLed, until the next sweep stops it and removes its folder and record", async () => {
    const environmentsJs = new URL("../dist/scratch/environments.js", import.meta.url);
    const loggerJs = new URL("../dist/log/logger.js", import.meta.url);
    expect(existsSync(fileURLToPath(environmentsJs)), "dist/ is missing: run npm run build").toBe(true);
    const script = join(work, "provision-and-hang.mjs");
    writeFileSync(
      script,
      `const [environmentsUrl, loggerUrl, root, runId] = process.argv.slice(2);
const { provisionScratch } = await import(environmentsUrl);
const { silentLogger: log } = await import(loggerUrl);
const env = await provisionScratch({ name: "orphan", spec: { type: "mariadb", runAs: "mysql", bin: undefined } }, runId, { root, log });
console.log(JSON.stringify({ id: env.id, port: env.connection.port }));
setInterval(() => {}, 60_000);
`,
    );
    const child = spawn(process.execPath, [script, environmentsJs.href, loggerJs.href, root, newRunId()], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const exited = once(child, "exit");
    try {
      const [line] = (await Promise.race([
        once(createInterface({ input: child.stdout }), "line"),
        exited.then(() => Promise.reject(new Error(`child exited: ${stderr}`))),
      ])) as [string];
      const { id, port } = JSON.parse(line) as { id: string; port: string };
      const { pid } = recordOf(id).resource as { pid: number };

      child.kill("SIGKILL");
      await exited;
      expect((await listScratch({ root })).find((r) => r.id === id)?.alive).toBe(false);
      expect(processRunning(pid)).toBe(true);
      expect(await accepts(Number(port))).toBe(true);

      const swept = await sweepScratch({ root, log: silentLogger });
      expect(swept.map((r) => r.id)).toEqual([id]);
      expect(processRunning(pid)).toBe(false);
      expect(await accepts(Number(port))).toBe(false);
      expect(existsSync(join(root, id))).toBe(false);
      expect(existsSync(join(root, `${id}.json`))).toBe(false);
    } finally {
      child.kill("SIGKILL");
    }
  });
});

describe("mariadb: ALTER DATABASE lines lose the source database's name", () => {
  const dump = [
    "/*M!999999\\- enable the sandbox mode */ ",
    "INSERT INTO `t` VALUES (1,'ALTER DATABASE `x` CHARACTER SET a COLLATE b ;'),",
    "(2,'not\\nALTER DATABASE `x` CHARACTER SET a COLLATE b ;');",
    "ALTER DATABASE `shop` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci ;",
    "DELIMITER ;;",
    "ALTER DATABASE `we``ird ünï` CHARACTER SET latin1 COLLATE latin1_swedish_ci ;;",
    "DELIMITER ;",
    "ALTER DATABASE `shop` CHARACTER SET latin1 COLLATE latin1_swedish_ci ;",
    "ALTER DATABASE `shop` CHARACTER SET latin1 COLLATE latin1_swedish_ci ; -- not generated",
    "",
  ].join("\n");
  const expected = dump
    .replace("ALTER DATABASE `shop` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci ;\n", "ALTER DATABASE CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci ;\n")
    .replace("ALTER DATABASE `we``ird ünï` CHARACTER SET latin1 COLLATE latin1_swedish_ci ;;", "ALTER DATABASE CHARACTER SET latin1 COLLATE latin1_swedish_ci ;;")
    .replace("ALTER DATABASE `shop` CHARACTER SET latin1 COLLATE latin1_swedish_ci ;\n", "ALTER DATABASE CHARACTER SET latin1 COLLATE latin1_swedish_ci ;\n");

  async function through(chunks: Buffer[]): Promise<string> {
    const out: Buffer[] = [];
    await pipeline(Readable.from(chunks), retargetAlterDatabase(), new Writable({ write: (c: Buffer, _e, cb) => (out.push(c), cb()) }));
    return Buffer.concat(out).toString("utf8");
  }

  it("rewrites only whole generated lines, whatever the chunk boundaries", async () => {
    const bytes = Buffer.from(dump);
    expect(await through([bytes])).toBe(expected);
    for (let size = 1; size <= 40; size++) {
      const chunks: Buffer[] = [];
      for (let i = 0; i < bytes.length; i += size) chunks.push(bytes.subarray(i, i + size));
      expect(await through(chunks), `chunks of ${size} bytes`).toBe(expected);
    }
  });

  it("passes long lines through without holding them back", async () => {
    const long = Buffer.concat([Buffer.from("\nALTER DATABASE `"), Buffer.alloc(5 * 1024 * 1024, 0x61), Buffer.from("\n")]);
    const chunks: Buffer[] = [];
    for (let i = 0; i < long.length; i += 65536) chunks.push(long.subarray(i, i + 65536));
    expect(Buffer.from(await through(chunks)).equals(long)).toBe(true);
  });
});

/** The stream's bytes, with a pause once `offset` bytes went by. */
async function* pausedAt(stream: Readable, offset: number, pauseMs: number): AsyncGenerator<Buffer> {
  let seen = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    if (seen < offset && seen + chunk.length >= offset) {
      yield chunk.subarray(0, offset - seen);
      await sleep(pauseMs);
      yield chunk.subarray(offset - seen);
    } else yield chunk;
    seen += chunk.length;
  }
}

function childPids(): number[] {
  return readdirSync("/proc")
    .filter((e) => /^\d+$/.test(e))
    .map(Number)
    .filter((pid) => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
        return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === process.pid;
      } catch {
        return false;
      }
    });
}

function commandLine(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
  } catch {
    return [];
  }
}

/** Running, and not a zombie waiting for a parent that never reaps it. */
function processRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

function uidOf(user: string): number {
  return Number(spawnSync("id", ["-u", user], { encoding: "utf8" }).stdout.trim());
}

async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("timed out waiting for a condition");
    await sleep(50);
  }
}
