import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ListMultipartUploadsCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateIdentity } from "../src/pipeline/age/index.js";
import { createTestBucket, rawS3Client, s3Servers, type S3ServerInfo } from "./setup/s3-servers.js";
import { makeTree, tempDir } from "./support/builders.js";
import { snapshot } from "./support/tree.js";
import { CLI, lifeboat } from "./support/cli.js";

const key = generateIdentity();

describe("lifeboat CLI", () => {
  let server: S3ServerInfo;
  let bucket: string;
  let work: string;
  let tree: string;
  let env: Record<string, string>;
  let config: string;

  beforeAll(async () => {
    expect(existsSync(CLI), "run `npm run build` first (npm test does)").toBe(true);
    server = s3Servers().find((s) => s.name === "radosgw")!;
    bucket = await createTestBucket(server, "cli");
    work = tempDir("lifeboat-cli-");
    tree = makeTree(work);
    writeFileSync(join(work, "identity.txt"), `${key.identity}\n`, { mode: 0o600 });
    writeFileSync(
      join(work, "slow-source.mjs"),
      // Writes 1 MiB of random data every 20 ms until killed: a long upload.
      `import { randomBytes } from "node:crypto";\nsetInterval(() => process.stdout.write(randomBytes(1 << 20)), 20);\n`,
    );
    env = { TEST_S3_KEY: server.accessKeyId, TEST_S3_SECRET: server.secretAccessKey };
    config = join(work, "lifeboat.yaml");
    writeFileSync(
      config,
      `storage:
  offsite:
    type: s3
    endpoint: ${server.endpoint}
    region: ${server.region}
    bucket: ${bucket}
    prefix: cli/
    forcePathStyle: true
    partSizeMiB: 5
    credentials:
      accessKeyId: \${env:TEST_S3_KEY}
      secretAccessKey: \${env:TEST_S3_SECRET}
encryption:
  recipients: [${key.recipient}]
  identity: \${file:./identity.txt}
jobs:
  tree:
    source: { type: files, paths: [./tree], exclude: ["*.tmp"] }
    rpo: 1h
  slow:
    source: { type: command, command: [${JSON.stringify(process.execPath)}, ./slow-source.mjs] }
  missing:
    source: { type: files, paths: [./does-not-exist] }
`,
    );
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  const run = (args: string[], extra: Parameters<typeof lifeboat>[1] = {}) => lifeboat(["-c", config, ...args], { env, cwd: work, ...extra });

  async function bucketKeys(prefix: string): Promise<string[]> {
    const page = await rawS3Client(server).send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
    return (page.Contents ?? []).map((o) => o.Key!);
  }

  it("validates a good config with exit 0", async () => {
    const result = await run(["validate"]);
    expect(result.stdout).toContain("ok (3 jobs, 1 storage)");
    expect(result.code).toBe(0);
  });

  it("prints the config's JSON Schema for editors", async () => {
    const result = await lifeboat(["schema"]);
    expect(result.code).toBe(0);
    const schema = JSON.parse(result.stdout) as { $schema: string; properties: Record<string, unknown> };
    expect(schema.$schema).toMatch(/json-schema/);
    expect(Object.keys(schema.properties)).toEqual(["storage", "encryption", "jobs", "scratch", "drills", "daemon", "prune", "notifications"]);
  });

  it("creates an age identity readable only by its owner, and never overwrites one", async () => {
    const file = join(work, "keys", "new.key");
    const made = await lifeboat(["keygen", "--output", file]);
    expect(made.code).toBe(0);
    const recipient = /public key: (age1\S+)/.exec(made.stdout)?.[1];
    expect(readFileSync(file, "utf8")).toContain(`# public key: ${recipient}`);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const again = await lifeboat(["keygen", "--output", file]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain("already exists; refusing to overwrite a key");
  });

  it("refuses an unknown LIFEBOAT_LOG_LEVEL with exit 2", async () => {
    const result = await run(["list"], { env: { ...env, LIFEBOAT_LOG_LEVEL: "loud" } });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('LIFEBOAT_LOG_LEVEL "loud" is not a log level; expected one of: trace, debug, info');
  });

  it("reports every config problem as file:line:col with exit 2", async () => {
    const bad = join(work, "bad.yaml");
    writeFileSync(bad, "jobs:\n  x:\n    source: { type: files, paths: [a] }\n    retension: 3\n    compression: lz4\n");
    const result = await lifeboat(["-c", bad, "validate"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`${bad}:4:5: unknown key "retension" in job "x"; expected one of: source, storage,`);
    expect(result.stderr).toContain(`${bad}:5:18: compression in job "x" must be one of: zstd, gzip, none; got "lz4" [schema]`);
    expect(result.stderr).toContain("2 problems");
  });

  it("backs up, lists, verifies and restores a folder through S3, with machine-readable output", async () => {
    const backup = await run(["--json", "backup", "tree"]);
    expect(backup.code, backup.stderr).toBe(0);
    const [made] = JSON.parse(backup.stdout) as Array<{ id: string; sizeBytes: number }>;

    const list = await run(["--json", "list"]);
    expect(list.code).toBe(0);
    const rows = JSON.parse(list.stdout) as Array<Record<string, unknown>>;
    expect(rows).toContainEqual(
      expect.objectContaining({ id: made!.id, job: "tree", sizeBytes: made!.sizeBytes, status: "succeeded", withinRpo: true, consistentAt: expect.any(String) }),
    );

    const verify = await run(["verify", "tree"]);
    expect(verify.code, verify.stderr).toBe(0);
    expect(verify.stdout).toContain(`ok tree ${made!.id}: size, SHA-256, decryption`);

    const restore = await run(["restore", "tree", "--to", "restored"]);
    expect(restore.code, restore.stderr).toBe(0);
    expect(snapshot(join(work, "restored", "tree"))).toEqual(snapshot(tree, { exclude: /\.tmp$/ }));

    const again = await run(["restore", "tree", "--to", "restored"]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain("is not empty");
    expect(again.stderr).toContain("hint: restore into a new folder, or pass --force");
  });

  it("exits 1 when verification finds corrupt data", async () => {
    const backup = await run(["--json", "backup", "tree"]);
    const [made] = JSON.parse(backup.stdout) as Array<{ id: string }>;
    const { PutObjectCommand } = await import("@aws-sdk/client-s3");
    await rawS3Client(server).send(new PutObjectCommand({ Bucket: bucket, Key: `cli/tree/${made!.id}/data.tar.zst.age`, Body: Buffer.from("not the backup") }));
    const verify = await run(["verify", "tree", "--id", made!.id]);
    expect(verify.code).toBe(1);
    expect(verify.stderr).toMatch(/has 14 bytes in the store; the manifest says \d+/);
  });

  it("exits 3 when a source fails, 2 for an unknown job, and never prints secrets", async () => {
    const missing = await run(["backup", "missing", "--verbose"]);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain('does-not-exist" does not exist (backing up job "missing")');

    const unknown = await run(["backup", "nope"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown job "nope"; expected one of: tree, slow, missing');

    const wrongSecret = await run(["backup", "tree", "--verbose"], { env: { ...env, TEST_S3_SECRET: "wrong-secret-value-1234" } });
    expect(wrongSecret.code).toBe(2);
    expect(wrongSecret.stderr).toContain("access denied");
    for (const output of [missing, unknown, wrongSecret]) {
      expect(output.stderr + output.stdout).not.toContain(server.secretAccessKey);
      expect(output.stderr + output.stdout).not.toContain("wrong-secret-value-1234");
      expect(output.stderr + output.stdout).not.toContain(key.identity);
    }
  });

  it("probes each storage and reports what a lenient store lacks", async () => {
    const lenient = s3Servers().find((s) => s.name === "s3rver")!;
    const lenientBucket = await createTestBucket(lenient, "probe");
    const probeConfig = join(work, "probe.yaml");
    writeFileSync(
      probeConfig,
      readFileSync(config, "utf8").replace(
        "encryption:",
        `  lenient:
    type: s3
    endpoint: ${lenient.endpoint}
    bucket: ${lenientBucket}
    forcePathStyle: true
    credentials: { accessKeyId: "\${env:LENIENT_KEY}", secretAccessKey: "\${env:LENIENT_SECRET}" }
encryption:`,
      ).replace(/^(  (tree|slow|missing):\n)/gm, "$1    storage: offsite\n"),
    );
    const probeEnv = { ...env, LENIENT_KEY: lenient.accessKeyId, LENIENT_SECRET: lenient.secretAccessKey };
    const result = await lifeboat(["-c", probeConfig, "--json", "probe"], { env: probeEnv, cwd: work });
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual([
      expect.objectContaining({ storage: "offsite", kind: "s3", reachable: true, conditionalWrites: true, multipartAbort: true }),
      expect.objectContaining({ storage: "lenient", kind: "s3", reachable: true, conditionalWrites: false, multipartAbort: false }),
    ]);
    const table = await lifeboat(["-c", probeConfig, "probe", "lenient"], { env: probeEnv, cwd: work });
    expect(table.stdout).toContain("no (If-None-Match is ignored");
  });

  it("stores a partial backup when some files cannot be read, names them, and exits 3", async () => {
    // Root reads everything, so the backup runs as an unprivileged user (as users' cron jobs do).
    const asUser = process.getuid?.() === 0 ? ["runuser", "-u", "nobody", "--"] : [];
    const root = tempDir("lifeboat-partial-");
    chmodSync(root, 0o777);
    mkdirSync(join(root, "data"));
    writeFileSync(join(root, "data", "readable.txt"), "fine\n");
    writeFileSync(join(root, "data", "secret.txt"), "no access\n");
    chmodSync(join(root, "data", "secret.txt"), 0o000);
    chmodSync(join(root, "data"), 0o755);
    writeFileSync(join(root, "partial.yaml"), "storage:\n  local: { type: filesystem, path: ./store }\njobs:\n  data:\n    source: { type: files, paths: [./data] }\n");
    chmodSync(join(root, "partial.yaml"), 0o644);
    const result = await lifeboat(["-c", join(root, "partial.yaml"), "--json", "backup", "data"], { cwd: root, prefix: asUser });
    try {
      expect(result.code, result.stderr).toBe(3);
      const [made] = JSON.parse(result.stdout) as Array<{ status: string; warnings: string[] }>;
      expect(made!.status).toBe("partial");
      expect(made!.warnings.join("\n")).toContain("data/secret.txt");
      const list = await lifeboat(["-c", join(root, "partial.yaml"), "--json", "list"], { cwd: root });
      expect(JSON.parse(list.stdout)).toEqual([expect.objectContaining({ job: "data", status: "partial" })]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it("draws a progress bar with bytes and rate on a terminal, and clears it", async () => {
    // `script` runs the CLI on a pseudo-terminal (which reports 0 columns: the bar must cope).
    const ttyConfig = join(work, "tty.yaml");
    writeFileSync(
      ttyConfig,
      `storage:\n  local: { type: filesystem, path: ./tty-store }\njobs:\n  paced:\n    compression: none\n    source: { type: command, command: [sh, -c, "for i in 1 2 3 4 5 6 7 8; do head -c 2000000 /dev/urandom; sleep 0.15; done"] }\n`,
    );
    const runner = join(work, "tty-backup.sh");
    writeFileSync(runner, `#!/bin/sh\nexec ${[process.execPath, CLI, "-c", ttyConfig, "backup", "paced"].map((a) => JSON.stringify(a)).join(" ")}\n`, { mode: 0o755 });
    const output = await new Promise<string>((done) => {
      const child = spawn("script", ["-qec", runner, "/dev/null"], { cwd: work, stdio: ["ignore", "pipe", "pipe"] });
      let text = "";
      child.stdout.on("data", (d: Buffer) => (text += d.toString()));
      child.on("close", () => done(text));
    });
    const frames = output.split("\r").filter((f) => f.startsWith("paced stored"));
    expect(frames.length).toBeGreaterThan(3);
    for (const frame of frames) expect(frame).toMatch(/^paced stored \d+(\.\d+)? (B|KiB|MiB) \d+(\.\d+)? (B|KiB|MiB)\/s +$/);
    // The bar is cleared before the result line.
    expect(output).toMatch(/\r +\r(\r?\n)?paced: backup \S+ succeeded, 15\.3 MiB stored/);
  });

  it("refuses to restore an archive entry that escapes the target, naming it, and writes nothing", async () => {
    const evilRoot = join(work, "evil");
    mkdirSync(evilRoot);
    writeFileSync(join(evilRoot, "fine.txt"), "fine");
    symlinkSync("/etc", join(evilRoot, "escape"));
    const evilConfig = join(work, "evil.yaml");
    writeFileSync(evilConfig, readFileSync(config, "utf8").replace("paths: [./tree]", "paths: [./evil]").replace("prefix: cli/", "prefix: evil/"));
    const backup = await lifeboat(["-c", evilConfig, "backup", "tree"], { env, cwd: work });
    expect(backup.code, backup.stderr).toBe(0);
    const restore = await lifeboat(["-c", evilConfig, "restore", "tree", "--to", "evil-restored"], { env, cwd: work });
    expect(restore.code, restore.stdout + restore.stderr).toBe(1);
    expect(restore.stderr).toContain('refusing to restore "evil/escape"');
    expect(existsSync(join(work, "evil-restored"))).toBe(false);
  });

  it("on SIGINT mid-upload: exits 130, aborts the multipart upload and leaves no backup", async () => {
    let child: ReturnType<typeof spawn> | undefined;
    const running = run(["backup", "slow"], { onSpawn: (c) => (child = c) });
    await waitFor(async () => (await bucketKeys("cli/slow/")).length > 0 || (await multipartUploads("cli/slow/")) > 0);
    child!.kill("SIGINT");
    const result = await running;
    expect(result.code).toBe(130);
    expect(await bucketKeys("cli/slow/")).toEqual([]);
    expect(await multipartUploads("cli/slow/")).toBe(0);
  });

  it("after SIGKILL mid-upload: no manifest is written and list does not show the backup", async () => {
    let child: ReturnType<typeof spawn> | undefined;
    const running = run(["backup", "slow"], { onSpawn: (c) => (child = c) });
    await waitFor(async () => (await multipartUploads("cli/slow/")) > 0);
    child!.kill("SIGKILL");
    const result = await running;
    expect(result.signal).toBe("SIGKILL");
    expect((await bucketKeys("cli/slow/")).filter((k) => k.endsWith("manifest.json"))).toEqual([]);
    const list = await run(["--json", "list", "slow"]);
    expect(JSON.parse(list.stdout)).toEqual([]);
  });

  it("after SIGKILL mid-write to the filesystem store: no object or manifest is visible", async () => {
    const fsConfig = join(work, "fs-kill.yaml");
    writeFileSync(fsConfig, readFileSync(config, "utf8").replace(/storage:\n[\s\S]*?encryption:/, "storage:\n  local: { type: filesystem, path: ./kill-store }\nencryption:"));
    let child: ReturnType<typeof spawn> | undefined;
    const running = lifeboat(["-c", fsConfig, "backup", "slow"], { env, cwd: work, onSpawn: (c) => (child = c) });
    // Wait until the data object's temp file is being written.
    await waitFor(async () => findFiles(join(work, "kill-store")).some((f) => f.includes(".lifeboat-tmp-")));
    child!.kill("SIGKILL");
    expect((await running).signal).toBe("SIGKILL");
    const list = await lifeboat(["-c", fsConfig, "--json", "list"], { env, cwd: work });
    expect(JSON.parse(list.stdout)).toEqual([]);
    const { openFilesystemStore } = await import("../src/storage/filesystem.js");
    const visible: string[] = [];
    for await (const o of openFilesystemStore({ path: join(work, "kill-store") }).list("")) visible.push(o.key);
    expect(visible).toEqual([]);
  });

  async function multipartUploads(prefix: string): Promise<number> {
    const result = await rawS3Client(server).send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }));
    return (result.Uploads ?? []).length;
  }
});

function findFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: "utf8" }).map((f) => join(dir, f));
}

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await condition()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("condition not met in time");
}
