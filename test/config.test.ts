/**
 * Config diagnostics.
 *
 * Golden files: every `test/config/golden/<case>.yaml` is checked with a fixed
 * environment and the rendered report must equal `<case>.out` byte for byte.
 * The file name in the report is the path relative to the repository root, so
 * run vitest from there. `UPDATE_GOLDEN=1 npx vitest run test/config.test.ts`
 * rewrites the .out files; read every changed one before keeping it.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { checkConfig, loadConfig, scratchNamed } from "../src/config/load.js";
import { configJsonSchema } from "../src/config/schema.js";
import { MAX_CONFIG_BYTES } from "../src/config/yaml-document.js";
import { generateIdentity } from "../src/pipeline/age/index.js";
import { forgetSecretsForTests, redactText } from "../src/log/redact.js";

const GOLDEN_DIR = "test/config/golden";
const ENV: NodeJS.ProcessEnv = { ORDERS_KEY: "AKIAEXAMPLE", S3_SECRET: "s3cr3t-value-123", ORDERS_DB_URL: "postgresql://orders@db.internal/orders" };
const UPDATE = process.env.UPDATE_GOLDEN === "1";

const cases = readdirSync(GOLDEN_DIR)
  .filter((f) => f.endsWith(".yaml"))
  .map((f) => f.slice(0, -".yaml".length))
  .sort();

describe("config diagnostics (golden)", () => {
  it("runs from the repository root and finds the golden cases", () => {
    // The .out files contain the relative path, so the working directory must be the repo root.
    expect(resolve(process.cwd())).toBe(fileURLToPath(new URL("..", import.meta.url)).replace(/[\\/]$/, ""));
    expect(cases.length).toBeGreaterThanOrEqual(25);
  });

  it.each(cases)("%s", (name) => {
    const file = `${GOLDEN_DIR}/${name}.yaml`;
    const outFile = `${GOLDEN_DIR}/${name}.out`;
    const { report, diagnostics } = checkConfig(file, ENV);
    // Every golden case exists to show at least one diagnostic.
    expect(diagnostics.length).toBeGreaterThan(0);
    if (UPDATE) writeFileSync(outFile, report);
    const expected = readFileSync(outFile, "utf8");
    expect(report).toBe(expected);
  });

  it("has no stale .out files", () => {
    const outs = readdirSync(GOLDEN_DIR).filter((f) => f.endsWith(".out")).map((f) => f.slice(0, -".out".length));
    expect(outs.sort()).toEqual(cases);
  });

  it("fails only the error cases: a warning alone still yields a config", () => {
    const warned = checkConfig(`${GOLDEN_DIR}/compression-level-with-compression-none.yaml`, ENV);
    expect(warned.config).toBeDefined();
    expect(warned.diagnostics.map((d) => d.severity)).toEqual(["warning"]);
    for (const name of cases.filter((c) => c !== "compression-level-with-compression-none")) {
      const { config, diagnostics } = checkConfig(`${GOLDEN_DIR}/${name}.yaml`, ENV);
      expect({ name, config }).toEqual({ name, config: undefined });
      expect(diagnostics.some((d) => d.severity === "error")).toBe(true);
    }
  });

  it("collects every problem of a file, sorted by position", () => {
    const { diagnostics } = checkConfig(`${GOLDEN_DIR}/many-problems-in-one-file.yaml`, ENV);
    expect(diagnostics.length).toBeGreaterThanOrEqual(5);
    const positions = diagnostics.map((d) => [d.line, d.col] as const);
    const sorted = [...positions].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    expect(positions).toEqual(sorted);
    expect(new Set(diagnostics.map((d) => d.line)).size).toBeGreaterThanOrEqual(5);
  });
});

describe("config loading", () => {
  const dirs: string[] = [];
  const tempDir = () => {
    const dir = mkdtempSync(join(tmpdir(), "lifeboat-config-test-"));
    dirs.push(dir);
    return dir;
  };
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it("rejects an alias bomb quickly", () => {
    const started = performance.now();
    const { config, diagnostics } = checkConfig(`${GOLDEN_DIR}/alias-bomb.yaml`, ENV);
    const elapsed = performance.now() - started;
    expect(config).toBeUndefined();
    expect(diagnostics.some((d) => d.rule === "security" && d.severity === "error")).toBe(true);
    expect(elapsed).toBeLessThan(1000);
  });

  it("rejects a file over 1 MiB without parsing it", () => {
    const dir = tempDir();
    const file = join(dir, "big.yaml");
    // Broken YAML: a parser would report a syntax error, the size check must come first.
    writeFileSync(file, `jobs: [\n${"#".repeat(MAX_CONFIG_BYTES)}\n`);
    const { config, diagnostics, report } = checkConfig(file, ENV);
    expect(config).toBeUndefined();
    expect(diagnostics).toHaveLength(1);
    expect(diagnostics[0]).toMatchObject({ file, line: 0, rule: "file", severity: "error" });
    expect(diagnostics[0]!.message).toContain("limited to 1 MiB");
    expect(report).toBe(`${file}: is ${MAX_CONFIG_BYTES + 9} bytes; config files are limited to 1 MiB [file]`);
  });

  it("reports a missing config file as a file diagnostic", () => {
    const file = join(tempDir(), "nope.yaml");
    const { config, diagnostics, report } = checkConfig(file, ENV);
    expect(config).toBeUndefined();
    expect(diagnostics).toEqual([
      { file, line: 0, col: 0, length: 1, message: "config file not found (use -c FILE or LIFEBOAT_CONFIG)", rule: "file", severity: "error" },
    ]);
    expect(report).toBe(`${file}: config file not found (use -c FILE or LIFEBOAT_CONFIG) [file]`);
    expect(() => loadConfig(file, ENV)).toThrow(/config file not found/);
  });

  it("accepts the shipped example configs", () => {
    const dir = tempDir();
    mkdirSync(join(dir, "examples"));
    mkdirSync(join(dir, ".lifeboat"));
    writeFileSync(join(dir, ".lifeboat", "demo-identity.txt"), `${generateIdentity().identity}\n`);
    for (const example of ["examples/minio.yaml", "lifeboat.yaml"]) {
      writeFileSync(join(dir, example), readFileSync(example, "utf8"));
      const env = { MINIO_KEY: "minio", MINIO_SECRET: "minio-secret", ORDERS_DB_URL: "postgresql://app:app-secret@127.0.0.1:5432/orders" };
      const { config, report } = checkConfig(join(dir, example), env);
      expect({ example, report }).toEqual({ example, report: "" });
      expect(config).toBeDefined();
    }
  });

  it("builds database connections from a URL or discrete fields, keeping the password out of the URL and redacted", () => {
    const dir = tempDir();
    const file = join(dir, "lifeboat.yaml");
    writeFileSync(
      file,
      [
        "jobs:",
        "  orders:",
        "    source: { type: postgres, url: \"${env:DB_URL}\", globals: true, stageAboveMiB: 0 }",
        "  shop:",
        "    source: { type: mariadb, host: 127.0.0.1, port: 3307, user: shop, password: \"${env:SHOP_PASSWORD}\", database: shop, bin: ./tools }",
        "scratch:",
        "  shared: { type: postgres, server: \"${env:SCRATCH_URL}\" }",
        "  files: { type: directory }",
        "",
      ].join("\n"),
    );
    const env = {
      DB_URL: "postgresql://app:pa%3Ass-word@db.internal:6432/orders?sslmode=require",
      SHOP_PASSWORD: "sh0p-s3cret",
      SCRATCH_URL: "postgres://ci@127.0.0.1/postgres",
    };
    const { config } = loadConfig(file, env);
    expect(config.jobs.orders!.source).toMatchObject({
      type: "postgres",
      connection: { host: "db.internal", port: 6432, user: "app", password: "pa:ss-word", database: "orders", options: { sslmode: "require" } },
      globals: true,
      noOwner: undefined,
      stageAboveBytes: 0,
    });
    expect(config.jobs.shop!.source).toMatchObject({
      type: "mariadb",
      connection: { host: "127.0.0.1", port: 3307, user: "shop", password: "sh0p-s3cret", database: "shop" },
      bin: join(dir, "tools"),
    });
    expect(config.scratch.shared).toMatchObject({ type: "postgres", runAs: "postgres", server: { host: "127.0.0.1", user: "ci", database: "postgres" } });
    expect(config.scratch.files).toEqual({ type: "directory" });
    expect(scratchNamed(config, "postgres").spec).toMatchObject({ type: "postgres", server: undefined, runAs: "postgres" });
    expect(scratchNamed(config, "shared").spec).toBe(config.scratch.shared);
    expect(() => scratchNamed(config, "nope")).toThrow(/unknown scratch environment "nope"; expected one of: shared, files, directory, postgres, mariadb/);
    expect(redactText("password pa:ss-word and sh0p-s3cret")).toBe("password [redacted] and [redacted]");
  });

  it("resolves ${env:…} and ${file:…} references and makes relative paths absolute", () => {
    const dir = tempDir();
    writeFileSync(join(dir, "session.token"), "token-from-file-42\n");
    const file = join(dir, "lifeboat.yaml");
    writeFileSync(
      file,
      [
        "storage:",
        "  local:",
        "    type: filesystem",
        "    path: ./store",
        "  offsite:",
        "    type: s3",
        "    endpoint: http://127.0.0.1:9000",
        "    bucket: backups",
        "    prefix: prod",
        "    credentials:",
        "      accessKeyId: ${env:ORDERS_KEY}",
        "      secretAccessKey: ${env:S3_SECRET}",
        "      sessionToken: ${file:./session.token}",
        "jobs:",
        "  docs:",
        "    storage: local",
        "    source: { type: files, paths: [./docs, ../shared/assets], exclude: ['*.tmp'] }",
        "    rpo: 1h30m",
        "  orders-db:",
        "    storage: offsite",
        "    source:",
        "      type: command",
        '      command: [pg_dump, "postgres://app:${env:S3_SECRET}@db/orders"]',
        "",
      ].join("\n"),
    );
    const { config, diagnostics } = checkConfig(file, ENV);
    expect(diagnostics).toEqual([]);
    expect(config).toBeDefined();
    const c = config!;
    expect(c.baseDir).toBe(dir);
    expect(c.storage.local).toEqual({ type: "filesystem", path: join(dir, "store"), prefix: "" });
    const offsite = c.storage.offsite;
    expect(offsite?.type).toBe("s3");
    if (offsite?.type !== "s3") throw new Error("unreachable");
    expect(offsite.prefix).toBe("prod/");
    expect(offsite.credentials).toEqual({
      accessKeyId: "AKIAEXAMPLE",
      secretAccessKey: "s3cr3t-value-123",
      sessionToken: "token-from-file-42",
    });
    expect(c.jobs.docs?.source).toEqual({
      type: "files",
      paths: [join(dir, "docs"), join(dir, "..", "shared", "assets")],
      exclude: ["*.tmp"],
    });
    expect(c.jobs.docs?.rpoMs).toBe(90 * 60_000);
    expect(c.jobs["orders-db"]?.source).toMatchObject({
      type: "command",
      command: ["pg_dump", "postgres://app:s3cr3t-value-123@db/orders"],
    });
    // No encryption section: nothing is encrypted.
    expect(c.encryption).toEqual({ recipients: [], identity: undefined });
    expect(c.jobs.docs?.encrypt).toBe(false);
  });

  it("resolves ${file:…} relative to the config's folder, not the working directory", () => {
    const dir = tempDir();
    writeFileSync(join(dir, "secret.txt"), "from-config-dir");
    const file = join(dir, "lifeboat.yaml");
    writeFileSync(
      file,
      "storage:\n  s:\n    type: s3\n    bucket: b\n    credentials:\n      accessKeyId: k\n      secretAccessKey: ${file:secret.txt}\njobs: {}\n",
    );
    const { config, diagnostics } = checkConfig(relative(process.cwd(), file), ENV);
    expect(diagnostics).toEqual([]);
    const s = config!.storage.s;
    if (s?.type !== "s3") throw new Error("expected s3 storage");
    expect(s.credentials?.secretAccessKey).toBe("from-config-dir");
  });

  it("cannot pollute Object.prototype through __proto__ keys", () => {
    const dir = tempDir();
    const variants = [
      "__proto__:\n  polluted: yes\n",
      '"__proto__": { polluted: yes }\n',
      "jobs:\n  __proto__: { polluted: yes }\n",
      "jobs:\n  docs:\n    source: { type: files, paths: [./d], __proto__: { polluted: yes } }\n",
      "base: &b { __proto__: { polluted: yes } }\njobs: *b\n",
      "storage:\n  - __proto__: { polluted: yes }\n",
      "? [__proto__]\n: { polluted: yes }\n",
      "constructor: { prototype: { polluted: yes } }\n",
    ];
    variants.forEach((text, i) => {
      const file = join(dir, `proto-${i}.yaml`);
      writeFileSync(file, text);
      const { config, diagnostics } = checkConfig(file, ENV);
      expect({ text, config }).toEqual({ text, config: undefined });
      expect(diagnostics.some((d) => d.rule === "security")).toBe(true);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      expect((Object.prototype as Record<string, unknown>).polluted).toBeUndefined();
    });
  });

  it("derives the recipients from the identity when they are omitted", () => {
    const dir = tempDir();
    const { identity, recipient } = generateIdentity();
    writeFileSync(join(dir, "identity.txt"), `# created by a test\n${identity}\n`);
    const file = join(dir, "lifeboat.yaml");
    writeFileSync(
      file,
      'encryption:\n  identity: "${file:./identity.txt}"\njobs:\n  docs:\n    source: { type: files, paths: [./docs] }\n',
    );
    const { config, diagnostics } = checkConfig(file, ENV);
    expect(diagnostics).toEqual([]);
    expect(config?.encryption.recipients).toEqual([recipient]);
    expect(config?.encryption.identity).toBe(`# created by a test\n${identity}`);
    expect(config?.jobs.docs?.encrypt).toBe(true);
    // Defaults: one implicit local store next to the config.
    expect(config?.jobs.docs?.storage).toBe("local");
    expect(config?.storage.local).toEqual({ type: "filesystem", path: join(dir, ".lifeboat", "store"), prefix: "" });
  });

  it("prints a JSON Schema for editors", () => {
    const schema = configJsonSchema() as { $schema?: unknown; type?: unknown; properties?: Record<string, unknown> };
    expect(typeof schema.$schema).toBe("string");
    expect(schema.type).toBe("object");
    expect(Object.keys(schema.properties ?? {}).sort()).toEqual(["daemon", "drills", "encryption", "jobs", "notifications", "prune", "scratch", "storage"]);
    expect(schema.properties?.jobs).toMatchObject({ type: "object" });
    expect(() => JSON.stringify(schema)).not.toThrow();
  });

  it.each([
    ["keepMonthly: 12", "{ keepMonthly: 12, keepDaily: 7 }", "30d", 'objectLock.retain 30d in storage "offsite" is shorter than job "orders-db" keeps backups (keepMonthly: 12, about 372d): older backups stay but are no longer immutable'],
    ["keepWithin: 90d", "{ keepWithin: 90d, keepWeekly: 4 }", "60d", 'objectLock.retain 60d in storage "offsite" is shorter than job "orders-db" keeps backups (keepWithin: 90d, about 90d): older backups stay but are no longer immutable'],
    ["keepHourly: 48", "{ keepHourly: 48 }", "1d", 'objectLock.retain 1d in storage "offsite" is shorter than job "orders-db" keeps backups (keepHourly: 48, about 2d): older backups stay but are no longer immutable'],
    ["a lock that covers the policy", "{ keepYearly: 1, keepDaily: 30 }", "400d", undefined],
    ["keepLast alone (unknown span)", "{ keepLast: 1000 }", "1d", undefined],
  ])("warns when objectLock.retain is shorter than the retention policy: %s", (_label, retention, retain, warning) => {
    const dir = mkdtempSync(join(tmpdir(), "lifeboat-lock-warning-"));
    try {
      const file = join(dir, "lifeboat.yaml");
      writeFileSync(
        file,
        `storage:\n  offsite:\n    type: s3\n    bucket: backups\n    objectLock: { mode: compliance, retain: ${retain} }\njobs:\n  orders-db:\n    source: { type: files, paths: [./data] }\n    retention: ${retention}\n`,
      );
      const { config, diagnostics } = checkConfig(file, {});
      expect(config).toBeDefined();
      if (warning === undefined) expect(diagnostics).toEqual([]);
      else {
        expect(diagnostics).toEqual([expect.objectContaining({ severity: "warning", rule: "schema", line: 5, message: warning })]);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("which resolved references count as secrets", () => {
  it("redacts credentials, files and command environment, but keeps an endpoint readable", () => {
    const dir = mkdtempSync(join(tmpdir(), "lifeboat-secrets-"));
    try {
      writeFileSync(join(dir, "token.txt"), "file-token-value-42\n");
      const file = join(dir, "lifeboat.yaml");
      writeFileSync(
        file,
        [
          "storage:",
          "  s3:",
          "    type: s3",
          "    endpoint: ${env:ENDPOINT}",
          "    bucket: b",
          "    credentials: { accessKeyId: AKIAEXAMPLE, secretAccessKey: \"${env:SECRET}\" }",
          "jobs:",
          "  dump:",
          "    source: { type: command, command: [dump], env: { TOKEN: \"${env:TOKEN}\", OTHER: \"${file:token.txt}\" } }",
          "",
        ].join("\n"),
      );
      const env = { ENDPOINT: "http://storage.internal:9000", SECRET: "secret-access-value-1", TOKEN: "env-token-value-7" };
      loadConfig(file, env);
      expect(redactText("at http://storage.internal:9000")).toBe("at http://storage.internal:9000");
      for (const secret of ["secret-access-value-1", "env-token-value-7", "file-token-value-42"]) {
        expect(redactText(`x ${secret} y`)).toBe("x [redacted] y");
      }
    } finally {
      forgetSecretsForTests();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
