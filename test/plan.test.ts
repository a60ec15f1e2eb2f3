/**
 * Restore plans: how they are read and checked against the config.
 *
 * Golden files: every `test/plans/golden/<case>.yaml` is checked against
 * `test/plans/lifeboat.yaml`, and the rendered report must equal `<case>.out`
 * byte for byte. `UPDATE_GOLDEN=1 npx vitest run test/plan.test.ts` rewrites
 * them; read every changed one before keeping it.
 */
import { copyFileSync, cpSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../src/config/load.js";
import { checkPlan, loadPlan, resolvePlanFile } from "../src/config/load-plan.js";
import { parseTemplate, renderTemplate, templateText } from "../src/model/plan.js";
import { generateIdentity } from "../src/pipeline/age/index.js";
import { tempDir } from "./support/builders.js";

const GOLDEN_DIR = "test/plans/golden";
const UPDATE = process.env.UPDATE_GOLDEN === "1";
const config = loadConfig("test/plans/lifeboat.yaml", {}).config;
const cases = readdirSync(GOLDEN_DIR).filter((f) => f.endsWith(".yaml")).map((f) => f.slice(0, -".yaml".length)).sort();

describe("plan diagnostics (golden)", () => {
  it.each(cases)("%s", (name) => {
    const { report, diagnostics } = checkPlan(`${GOLDEN_DIR}/${name}.yaml`, config, {});
    expect(diagnostics.length).toBeGreaterThan(0);
    if (UPDATE) writeFileSync(`${GOLDEN_DIR}/${name}.out`, report);
    expect(report).toBe(readFileSync(`${GOLDEN_DIR}/${name}.out`, "utf8"));
  });

  it("has no stale .out files", () => {
    expect(readdirSync(GOLDEN_DIR).filter((f) => f.endsWith(".out")).map((f) => f.slice(0, -".out".length)).sort()).toEqual(cases);
  });

  it("refuses every case but the one with warnings only", () => {
    for (const name of cases) {
      const { plan, diagnostics } = checkPlan(`${GOLDEN_DIR}/${name}.yaml`, config, {});
      const errors = diagnostics.filter((d) => d.severity === "error");
      expect({ name, refused: plan === undefined }).toEqual({ name, refused: errors.length > 0 });
    }
    expect(checkPlan(`${GOLDEN_DIR}/warnings-no-targets-unused-scratch.yaml`, config, {}).plan).toBeDefined();
  });
});

describe("a plan as the drill sees it", () => {
  const dir = tempDir("lifeboat-plan-");
  const file = join(dir, "quarterly.yaml");
  writeFileSync(
    file,
    `name: quarterly
targets: { rto: 15m, rpo: 1h }
pick: { random-within: 30d }
scratch:
  db: { type: postgres }
  files: { type: directory }
steps:
  - name: restore orders database
    restore: { job: orders-db, into: db }
  - name: restore uploads
    restore: { job: uploads, into: files, at: "2026-11-01T00:00:00Z", fallback: 1 }
  - name: orders are there
    verify: { sql: "select count(*) >= 1000 from orders", on: db }
  - name: a few customers
    verify: { sql: "select id from customers limit 5", on: db, rows: { min: 1, max: 5 } }
  - name: newest order
    rpo-probe: { sql: "select max(created_at) from orders", on: db }
  - name: app answers
    verify: { http: "http://127.0.0.1:8080/health", status: [200, 204], retries: 5, retryDelay: 1s, timeout: 10s }
  - name: smoke test
    run: { command: [./smoke.sh, "--db=\${scratch.db.url}"], env: { DATA: "\${scratch.files.directory}" }, timeout: 2m }
  - name: switch dns
    manual: "point orders.example.com at the recovered stack"
    critical: false
`,
  );

  it("turns every step into its model with the defaults filled in", () => {
    const plan = loadPlan(file, config, {});
    expect(plan.targets).toEqual({ rtoMs: 15 * 60_000, rpoMs: 3_600_000 });
    expect(plan.recoveryPoint).toEqual({ by: "random-within", withinMs: 30 * 86_400_000 });
    expect(plan.storage).toBe("local");
    expect(plan.scratch.map((s) => [s.name, s.spec.type])).toEqual([["db", "postgres"], ["files", "directory"]]);
    const [restoreDb, restoreFiles, orders, customers, probe, http, smoke, dns] = plan.steps;
    expect(restoreDb).toMatchObject({ action: { kind: "restore", job: "orders-db", into: "db", choice: undefined, fallback: 3 }, timeoutMs: undefined, retries: 0, critical: true, onError: "fail" });
    expect(restoreFiles!.action).toMatchObject({ choice: { by: "at", at: new Date("2026-11-01T00:00:00Z") }, fallback: 1 });
    expect(orders!.action).toEqual({ kind: "verify", check: { type: "sql", on: "db", sql: "select count(*) >= 1000 from orders", expect: { type: "true" } } });
    expect(customers!.action).toMatchObject({ check: { expect: { type: "rows", min: 1, max: 5 } } });
    expect(orders!.timeoutMs).toBe(10 * 60_000);
    expect(probe!.action).toMatchObject({ kind: "rpo-probe", probe: { type: "sql", on: "db" } });
    expect(http).toMatchObject({ retries: 5, retryDelayMs: 1_000, timeoutMs: 10_000, action: { check: { type: "http", status: [200, 204], method: "GET" } } });
    expect(smoke).toMatchObject({ timeoutMs: 120_000, action: { kind: "run", background: false, command: { cwd: dir } } });
    expect(dns).toMatchObject({ critical: false, onError: "continue", timeoutMs: undefined, action: { kind: "manual", nonInteractive: "skip" } });
    expect(plan.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it("keeps ${scratch.NAME.KEY} structured, to be filled value by value", () => {
    const plan = loadPlan(file, config, {});
    const smoke = plan.steps[6]!.action as { command: { argv: ReturnType<typeof parseTemplate>[] } };
    expect(smoke.command.argv[1]).toEqual(["--db=", { scratch: "db", key: "url" }]);
    const rendered = renderTemplate(smoke.command.argv[1]!, (ref) => (ref.key === "url" ? "postgresql://postgres@127.0.0.1:5999/scratch; rm -rf /" : "?"));
    expect(rendered).toBe("--db=postgresql://postgres@127.0.0.1:5999/scratch; rm -rf /");
    expect(templateText(smoke.command.argv[1]!)).toBe("--db=${scratch.db.url}");
  });
});

describe("finding a plan", () => {
  it("resolves a drill named in the config, a file, and plans/NAME.yaml next to the config", () => {
    const dir = tempDir("lifeboat-plans-");
    mkdirSync(join(dir, "plans"));
    writeFileSync(join(dir, "plans", "nightly.yaml"), "name: nightly\nsteps: []\n");
    writeFileSync(join(dir, "lifeboat.yaml"), "drills:\n  quarterly: { plan: plans/nightly.yaml }\n");
    const cfg = loadConfig(join(dir, "lifeboat.yaml"), {}).config;
    expect(resolvePlanFile("quarterly", cfg)).toMatch(/plans\/nightly\.yaml$/);
    expect(resolvePlanFile("nightly", cfg)).toMatch(/plans\/nightly\.yaml$/);
    expect(resolvePlanFile(join(dir, "plans", "nightly.yaml"), cfg)).toBe(join(dir, "plans", "nightly.yaml"));
    expect(() => resolvePlanFile("weekly", cfg)).toThrow(/no plan "weekly"/);
  });
});

describe("the example plans shipped in plans/", () => {
  it("plans/demo.yaml is valid against the quick-start lifeboat.yaml", () => {
    const dir = tempDir("lifeboat-demo-plan-");
    // The quick-start config reads the demo identity that `npm run demo` creates; give it one.
    mkdirSync(join(dir, ".lifeboat"));
    writeFileSync(join(dir, ".lifeboat", "demo-identity.txt"), generateIdentity().identity);
    copyFileSync("lifeboat.yaml", join(dir, "lifeboat.yaml"));
    cpSync("plans", join(dir, "plans"), { recursive: true });
    const cfg = loadConfig(join(dir, "lifeboat.yaml"), {}).config;
    const checked = checkPlan(join(dir, "plans", "demo.yaml"), cfg, {});
    expect(checked.report).toBe("");
    expect(checked.plan!.steps.map((s) => s.action.kind)).toEqual(["restore", "verify", "verify", "rpo-probe"]);
  });

  it("plans/postgres-drill.yaml is valid against examples/postgres.yaml", () => {
    const dir = tempDir("lifeboat-pg-plan-");
    mkdirSync(join(dir, ".lifeboat"));
    writeFileSync(join(dir, ".lifeboat", "demo-identity.txt"), generateIdentity().identity);
    cpSync("examples", join(dir, "examples"), { recursive: true });
    cpSync("plans", join(dir, "plans"), { recursive: true });
    const cfg = loadConfig(join(dir, "examples", "postgres.yaml"), { ORDERS_DB_URL: "postgresql://app@127.0.0.1:5432/orders" }).config;
    const checked = checkPlan(cfg.drills["postgres-drill"]!, cfg, {});
    expect(checked.report).toBe("");
    expect(checked.plan!.steps.map((s) => s.action.kind)).toEqual(["restore", "verify", "verify", "rpo-probe", "run", "manual"]);
  });

  it("every file in plans/ is one of the checked examples", () => {
    expect(readdirSync("plans").sort()).toEqual(["demo.yaml", "postgres-drill.yaml"]);
  });
});
