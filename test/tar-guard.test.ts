/**
 * The restore guard: a pass-through stream in front of `tar -x` that refuses
 * archives writing outside the restore target, before tar sees a byte of the
 * offending entry.
 *
 * Malicious archives are written with python3's `tarfile` (which writes any
 * name it is given) or header by header in TS; good archives with GNU tar.
 */
import { execFileSync, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { link, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LifeboatError } from "../src/model/errors.js";
import { checkEntryName, createTarGuard, resolveInsideRoot } from "../src/sources/tar-guard.js";

let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "lifeboat-tar-guard-"));
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------
// Archive builders
// ---------------------------------------------------------------------------

const PYTHON_WRITER = [
  "import io, json, sys, tarfile",
  "out, spec = sys.argv[1], json.loads(sys.argv[2])",
  'formats = {"gnu": tarfile.GNU_FORMAT, "pax": tarfile.PAX_FORMAT, "ustar": tarfile.USTAR_FORMAT}',
  'types = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,',
  '         "chr": tarfile.CHRTYPE, "blk": tarfile.BLKTYPE, "fifo": tarfile.FIFOTYPE}',
  "offsets = []",
  'with tarfile.open(out, "w", format=formats[spec["format"]]) as tar:',
  '    for entry in spec["entries"]:',
  '        info = tarfile.TarInfo(entry["name"])',
  '        info.type = types[entry.get("type", "file")]',
  "        info.mode = 0o755 if info.type == tarfile.DIRTYPE else 0o644",
  "        info.mtime = 1700000000",
  '        info.linkname = entry.get("link", "")',
  '        info.pax_headers = entry.get("pax", {})',
  '        data = entry.get("data", "").encode()',
  "        if info.type == tarfile.REGTYPE:",
  "            info.size = len(data)",
  "        if info.type in (tarfile.CHRTYPE, tarfile.BLKTYPE):",
  "            info.devmajor, info.devminor = 8, 1",
  "        offsets.append(tar.offset)",
  "        tar.addfile(info, io.BytesIO(data) if info.type == tarfile.REGTYPE else None)",
  "    end = tar.offset",
  'print(json.dumps({"offsets": offsets, "end": end}))',
].join("\n");

interface PyEntry {
  name: string;
  type?: "file" | "dir" | "symlink" | "hardlink" | "chr" | "blk" | "fifo";
  link?: string;
  data?: string;
  pax?: Record<string, string>;
}

interface PyArchive {
  archive: Buffer;
  /** where each entry (including its L/K/x records) starts */
  offsets: number[];
  /** where the end-of-archive marker starts */
  end: number;
}

let pyCounter = 0;

/** Writes an archive with python3's tarfile (no shell: script via -c, arguments via argv). */
function pyTar(entries: PyEntry[], format: "gnu" | "pax" | "ustar" = "gnu"): PyArchive {
  const out = join(work, `py-${++pyCounter}.tar`);
  const stdout = execFileSync("python3", ["-c", PYTHON_WRITER, out, JSON.stringify({ format, entries })], {
    encoding: "utf8",
  });
  const { offsets, end } = JSON.parse(stdout) as { offsets: number[]; end: number };
  return { archive: readFileSync(out), offsets, end };
}

function offsetOf(archive: PyArchive, index: number): number {
  const offset = archive.offsets[index];
  if (offset === undefined) throw new Error(`no entry ${index}`);
  return offset;
}

/** `tar -cf - -C dir .` with GNU tar. */
function gnuTar(dir: string, format: "gnu" | "pax"): Buffer {
  return execFileSync("tar", [`--format=${format}`, "-cf", "-", "-C", dir, "."], { maxBuffer: 64 << 20 });
}

/** A ustar header written by hand, with a correct checksum unless told otherwise. */
function tsHeader(options: { name: string; type?: string; size?: number; link?: string; sizeField?: Buffer }): Buffer {
  const header = Buffer.alloc(512);
  header.write(options.name, 0, 100, "latin1");
  header.write("0000644\0", 100, "latin1");
  header.write("0000000\0", 108, "latin1");
  header.write("0000000\0", 116, "latin1");
  if (options.sizeField) options.sizeField.copy(header, 124, 0, 12);
  else header.write(`${(options.size ?? 0).toString(8).padStart(11, "0")}\0`, 124, "latin1");
  header.write("14524770000\0", 136, "latin1");
  header.write(options.type ?? "0", 156, 1, "latin1");
  if (options.link !== undefined) header.write(options.link, 157, 100, "latin1");
  header.write("ustar\x0000", 257, "latin1");
  header.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "latin1");
  return header;
}

function padTo512(data: Buffer): Buffer {
  return Buffer.concat([data, Buffer.alloc((512 - (data.length % 512)) % 512)]);
}

/** An entry: header plus padded data (size taken from the data unless given). */
function tsEntry(
  options: { name: string; type?: string; size?: number; link?: string; sizeField?: Buffer },
  data: Buffer = Buffer.alloc(0),
): Buffer {
  return Buffer.concat([tsHeader({ size: data.length, ...options }), padTo512(data)]);
}

/** A pax extended header ('x' or 'g') with these records. */
function tsPax(records: Record<string, string>, type: "x" | "g" = "x"): Buffer {
  const body = Object.entries(records)
    .map(([key, value]) => {
      const rest = ` ${key}=${value}\n`;
      let length = Buffer.byteLength(rest) + 1;
      while (String(length).length + Buffer.byteLength(rest) !== length) length++;
      return `${length}${rest}`;
    })
    .join("");
  return tsEntry({ name: "PaxHeader/entry", type }, Buffer.from(body, "utf8"));
}

const END_OF_ARCHIVE = Buffer.alloc(1024);

function tsArchive(...parts: Buffer[]): Buffer {
  return Buffer.concat([...parts, END_OF_ARCHIVE]);
}

// ---------------------------------------------------------------------------
// Running the guard
// ---------------------------------------------------------------------------

interface GuardRun {
  /** exactly the bytes the guard pushed downstream */
  forwarded: Buffer;
  error: unknown;
}

/** Feeds `archive` into a guard `chunkSize` bytes at a time. */
async function feed(archive: Buffer, chunkSize = 64 * 1024): Promise<GuardRun> {
  const guard = createTarGuard();
  const forwarded: Buffer[] = [];
  const push = guard.push.bind(guard);
  guard.push = (chunk: unknown, encoding?: BufferEncoding): boolean => {
    if (Buffer.isBuffer(chunk)) forwarded.push(Buffer.from(chunk));
    return push(chunk, encoding);
  };
  const done = new Promise<unknown>((resolve) => {
    guard.on("error", resolve);
    guard.on("end", () => resolve(undefined));
  });
  guard.resume();
  for (let i = 0; i < archive.length && !guard.destroyed; i += chunkSize) {
    guard.write(archive.subarray(i, i + chunkSize));
  }
  if (!guard.destroyed) guard.end();
  const error = await done;
  return { forwarded: Buffer.concat(forwarded), error };
}

const CHUNK_SIZES = [1, 511, 513, 64 * 1024];

async function expectPassesThrough(archive: Buffer, chunkSizes = CHUNK_SIZES): Promise<void> {
  for (const chunkSize of chunkSizes) {
    const { forwarded, error } = await feed(archive, chunkSize);
    expect(error, `chunk size ${chunkSize}`).toBeUndefined();
    expect(forwarded.equals(archive), `byte-identical output with chunk size ${chunkSize}`).toBe(true);
  }
}

function expectGuardError(error: unknown, code: "RESTORE_UNSAFE_ENTRY" | "RESTORE_TAR_INVALID"): LifeboatError {
  expect(error).toBeInstanceOf(LifeboatError);
  const lifeboatError = error as LifeboatError;
  expect(lifeboatError.code).toBe(code);
  expect(lifeboatError.kind).toBe("verification");
  return lifeboatError;
}

/**
 * Expects the guard to refuse `entry`, having forwarded exactly the first
 * `stopsAt` bytes (so nothing of the entry's header or its L/K/x records),
 * whatever the chunk size.
 */
async function expectRefused(
  archive: Buffer,
  expected: { entry: string; message: string | RegExp; stopsAt: number },
): Promise<LifeboatError> {
  let last: LifeboatError | undefined;
  for (const chunkSize of [1, 513, 64 * 1024]) {
    const { forwarded, error } = await feed(archive, chunkSize);
    last = expectGuardError(error, "RESTORE_UNSAFE_ENTRY");
    expect(last.details?.entry).toBe(expected.entry);
    if (typeof expected.message === "string") expect(last.message).toBe(expected.message);
    else expect(last.message).toMatch(expected.message);
    expect(forwarded.length, `forwarded bytes with chunk size ${chunkSize}`).toBe(expected.stopsAt);
    expect(forwarded.equals(archive.subarray(0, expected.stopsAt))).toBe(true);
  }
  return last as LifeboatError;
}

async function expectInvalid(archive: Buffer, reason: RegExp): Promise<LifeboatError> {
  const { error } = await feed(archive, 513);
  const lifeboatError = expectGuardError(error, "RESTORE_TAR_INVALID");
  expect(lifeboatError.details?.reason).toMatch(reason);
  const { error: again } = await feed(archive, 1);
  expect((again as LifeboatError).message).toBe(lifeboatError.message);
  return lifeboatError;
}

// ---------------------------------------------------------------------------
// Trees and real restores
// ---------------------------------------------------------------------------

const LONG_PATH = `${"d".repeat(70)}/${"e".repeat(70)}/${"f".repeat(90)}.txt`;

/** A tree with long names (GNU L/K records, pax path/linkpath), symlinks that stay inside, hardlinks. */
async function buildGoodTree(root: string): Promise<void> {
  await mkdir(join(root, "lib/v1"), { recursive: true });
  await mkdir(join(root, "lib/v2"), { recursive: true });
  await mkdir(join(root, "empty-dir"));
  await mkdir(join(root, LONG_PATH, ".."), { recursive: true });
  await writeFile(join(root, "readme.txt"), "hello\n");
  await writeFile(join(root, "empty.txt"), "");
  await writeFile(join(root, "exact512.bin"), Buffer.alloc(512, 7));
  await writeFile(join(root, "big.bin"), randomBytes(70_000));
  await writeFile(join(root, "ünïcödé.txt"), "utf-8 name\n");
  await writeFile(join(root, "lib/v1/a.txt"), "v1\n");
  await writeFile(join(root, "lib/v2/a.txt"), "v2\n");
  await writeFile(join(root, LONG_PATH), "deep\n");
  await symlink("v2", join(root, "lib/current"));
  await symlink("../v1/a.txt", join(root, "lib/v2/sibling"));
  await symlink("..", join(root, "lib/up"));
  await symlink(".", join(root, "lib/v2/self"));
  await symlink(LONG_PATH, join(root, "long-link"));
  await writeFile(join(root, "hard1.txt"), "same inode\n");
  await link(join(root, "hard1.txt"), join(root, "hard2.txt"));
}

/** path → "dir" | "file <sha256>" | "symlink -> target" for the whole tree. */
async function snapshot(root: string): Promise<Record<string, string>> {
  const result: Record<string, string> = {};
  const walk = async (relative: string): Promise<void> => {
    for (const entry of await readdir(join(root, relative), { withFileTypes: true })) {
      const path = relative === "" ? entry.name : `${relative}/${entry.name}`;
      if (entry.isSymbolicLink()) result[path] = `symlink -> ${await readlink(join(root, path))}`;
      else if (entry.isDirectory()) {
        result[path] = "dir";
        await walk(path);
      } else result[path] = `file ${createHash("sha256").update(await readFile(join(root, path))).digest("hex")}`;
    }
  };
  await walk("");
  return result;
}

/** Pipes `archive` through a guard into GNU `tar -x -C staging` (spawned with argv). */
async function restoreThroughGuard(
  archive: Buffer,
  staging: string,
): Promise<{ error: unknown; tarExitCode: number | null; tarStderr: string }> {
  const tar = spawn("tar", ["-x", "-f", "-", "-C", staging], { stdio: ["pipe", "ignore", "pipe"] });
  let tarStderr = "";
  tar.stderr.setEncoding("utf8").on("data", (text: string) => (tarStderr += text));
  const exited = new Promise<number | null>((resolve) => tar.on("close", (code) => resolve(code)));
  let error: unknown;
  try {
    await pipeline(Readable.from(chunksOf(archive, 4096)), createTarGuard(), tar.stdin);
  } catch (caught) {
    error = caught;
  }
  return { error, tarExitCode: await exited, tarStderr };
}

function* chunksOf(buffer: Buffer, size: number): Generator<Buffer> {
  for (let i = 0; i < buffer.length; i += size) yield buffer.subarray(i, i + size);
}

async function newDir(name: string): Promise<string> {
  const dir = join(work, `${name}-${++pyCounter}`);
  await mkdir(dir, { recursive: true });
  return dir;
}

// ---------------------------------------------------------------------------
// The spec
// ---------------------------------------------------------------------------

describe("tar guard: good archives pass through unchanged", () => {
  let tree: string;
  let gnuArchive: Buffer;
  let paxArchive: Buffer;

  beforeAll(async () => {
    tree = await newDir("good-tree");
    await buildGoodTree(tree);
    gnuArchive = gnuTar(tree, "gnu");
    paxArchive = gnuTar(tree, "pax");
  });

  it("GNU format (with L and K long-name records) is forwarded byte-identical, whatever the chunk size", async () => {
    expect(gnuArchive.includes("././@LongLink")).toBe(true);
    expect(LONG_PATH.length).toBeGreaterThan(100);
    await expectPassesThrough(gnuArchive);
  });

  it("pax format (with path= and linkpath= records) is forwarded byte-identical, whatever the chunk size", async () => {
    expect(paxArchive.includes(` path=./${LONG_PATH}\n`)).toBe(true);
    expect(paxArchive.includes(` linkpath=${LONG_PATH}\n`)).toBe(true);
    await expectPassesThrough(paxArchive);
  });

  it("a ustar name split into prefix and name fields passes", async () => {
    const { archive } = pyTar([{ name: `${"p".repeat(120)}/file.txt`, data: "x" }], "ustar");
    await expectPassesThrough(archive);
  });

  it("restoring a good archive through the guard into tar -x recreates the source tree", async () => {
    for (const archive of [gnuArchive, paxArchive]) {
      const staging = await newDir("staging");
      const { error, tarExitCode, tarStderr } = await restoreThroughGuard(archive, staging);
      expect(error).toBeUndefined();
      expect(tarExitCode, tarStderr).toBe(0);
      expect(await snapshot(staging)).toEqual(await snapshot(tree));
      const [one, two] = await Promise.all([lstat(join(staging, "hard1.txt")), lstat(join(staging, "hard2.txt"))]);
      expect(one.ino).toBe(two.ino);
    }
  });

  it("symlinks that stay inside are fine: `lib/current -> v2`, `lib/v2/sibling -> ../v1/a.txt`, `lib/up -> ..`", async () => {
    const { archive } = pyTar([
      { name: "lib", type: "dir" },
      { name: "lib/current", type: "symlink", link: "v2" },
      { name: "lib/v2/sibling", type: "symlink", link: "../v1/a.txt" },
      { name: "lib/up", type: "symlink", link: ".." },
      { name: "lib/dangling", type: "symlink", link: "does/not/exist" },
      { name: "loop-a", type: "symlink", link: "loop-b" },
      { name: "loop-b", type: "symlink", link: "loop-a" },
    ]);
    await expectPassesThrough(archive, [1, 64 * 1024]);
  });

  it("a file written through an in-archive symlink that stays inside is fine (`d/up -> ..`, then `d/up/x` = `x`)", async () => {
    const { archive } = pyTar([
      { name: "d", type: "dir" },
      { name: "d/up", type: "symlink", link: ".." },
      { name: "d/up/x", data: "lands in the root" },
    ]);
    await expectPassesThrough(archive, [1, 64 * 1024]);
  });

  it("a pax size= record overrides the header's size field (the data is skipped by it)", async () => {
    const data = padTo512(Buffer.concat([tsHeader({ name: "../looks-like-a-header" }), Buffer.from("tail")]));
    const archive = tsArchive(tsPax({ size: String(data.length) }), tsEntry({ name: "big.bin", size: 0 }, Buffer.alloc(0)), data);
    await expectPassesThrough(archive, [1, 64 * 1024]);
  });

  it("base-256 size fields are understood", async () => {
    const data = padTo512(Buffer.concat([tsHeader({ name: "/etc/looks-like-a-header" }), Buffer.alloc(200, 1)]));
    const sizeField = Buffer.alloc(12);
    sizeField[0] = 0x80;
    sizeField.writeUInt32BE(712, 8);
    const header = tsHeader({ name: "data.bin", sizeField });
    await expectPassesThrough(tsArchive(header, data), [1, 64 * 1024]);
  });
});

describe("tar guard: entries that would land outside the target are refused before tar sees them", () => {
  it("absolute path", async () => {
    const archive = pyTar([{ name: "ok.txt", data: "fine" }, { name: "/etc/passwd", data: "root::0:0::/:/bin/sh\n" }]);
    await expectRefused(archive.archive, {
      entry: "/etc/passwd",
      message: 'refusing to restore "/etc/passwd": absolute path',
      stopsAt: offsetOf(archive, 1),
    });
  });

  it("a `..` component", async () => {
    const archive = pyTar([{ name: "ok.txt", data: "fine" }, { name: "../../etc/passwd", data: "x" }]);
    const error = await expectRefused(archive.archive, {
      entry: "../../etc/passwd",
      message: 'refusing to restore "../../etc/passwd": path escapes the target',
      stopsAt: offsetOf(archive, 1),
    });
    expect(error.details).toEqual({ entry: "../../etc/passwd", reason: "path escapes the target" });
  });

  it("`a/../../x`", async () => {
    const archive = pyTar([{ name: "a/../../x", data: "x" }]);
    await expectRefused(archive.archive, { entry: "a/../../x", message: /path escapes the target/, stopsAt: 0 });
  });

  it("backslash and drive-letter tricks", async () => {
    for (const name of ["..\\..\\x", "C:\\Windows\\x", "\\x"]) {
      const archive = pyTar([{ name, data: "x" }]);
      await expectRefused(archive.archive, { entry: name, message: /refusing to restore/, stopsAt: 0 });
    }
  });

  it("an empty name", async () => {
    const archive = tsArchive(tsEntry({ name: "" }, Buffer.from("x")));
    await expectRefused(archive, { entry: "", message: 'refusing to restore "": empty name', stopsAt: 0 });
  });

  it("a pax path= record with `..` (overriding a harmless header name)", async () => {
    const archive = pyTar([{ name: "ok.txt", data: "fine" }, { name: "safe.txt", data: "x", pax: { path: "../../evil.txt" } }], "pax");
    await expectRefused(archive.archive, {
      entry: "../../evil.txt",
      message: 'refusing to restore "../../evil.txt": path escapes the target',
      stopsAt: offsetOf(archive, 1),
    });
  });

  it("a GNU long name (L record) with `..`", async () => {
    const name = `${"a".repeat(120)}/../../../evil.txt`;
    const archive = pyTar([{ name: "ok.txt", data: "fine" }, { name, data: "x" }]);
    expect(archive.archive.includes("././@LongLink")).toBe(true);
    await expectRefused(archive.archive, { entry: name, message: /path escapes the target/, stopsAt: offsetOf(archive, 1) });
  });

  it("a ustar prefix field is joined with the name before checking", async () => {
    const name = `${"p".repeat(120)}/../../../evil.txt`;
    const archive = pyTar([{ name, data: "x" }], "ustar");
    await expectRefused(archive.archive, { entry: name, message: /path escapes the target/, stopsAt: 0 });
  });

  it("a symlink with an absolute target", async () => {
    const archive = pyTar([{ name: "lib", type: "dir" }, { name: "lib/link", type: "symlink", link: "/etc" }]);
    await expectRefused(archive.archive, {
      entry: "lib/link",
      message: 'refusing to restore "lib/link": symlink target "/etc" escapes the target (absolute path)',
      stopsAt: offsetOf(archive, 1),
    });
  });

  it("a symlink whose relative target escapes", async () => {
    const archive = pyTar([{ name: "lib", type: "dir" }, { name: "lib/link", type: "symlink", link: "../../.." }]);
    const error = await expectRefused(archive.archive, {
      entry: "lib/link",
      message: 'refusing to restore "lib/link": symlink target "../../.." escapes the target',
      stopsAt: offsetOf(archive, 1),
    });
    expect(error.details).toEqual({ entry: "lib/link", reason: 'symlink target "../../.." escapes the target' });
  });

  it("a symlink that leaves the root and comes back in (`d/x -> ../../<root>/y`) counts as escaping", async () => {
    const archive = pyTar([{ name: "d/x", type: "symlink", link: "../../staging/y" }]);
    await expectRefused(archive.archive, { entry: "d/x", message: /escapes the target/, stopsAt: 0 });
  });

  it("a symlink target from a GNU long-link (K) record or a pax linkpath= record", async () => {
    const longTarget = `${"../".repeat(40)}etc/passwd`;
    const gnu = pyTar([{ name: "link", type: "symlink", link: longTarget }]);
    expect(gnu.archive.includes("././@LongLink")).toBe(true);
    await expectRefused(gnu.archive, { entry: "link", message: /symlink target "(\.\.\/)+etc\/passwd" escapes/, stopsAt: 0 });

    const pax = pyTar([{ name: "link", type: "symlink", link: "harmless", pax: { linkpath: "/etc/shadow" } }], "pax");
    await expectRefused(pax.archive, { entry: "link", message: /symlink target "\/etc\/shadow" escapes/, stopsAt: 0 });
  });

  it("a hardlink whose target escapes or is absolute", async () => {
    const relative = pyTar([{ name: "ok.txt", data: "fine" }, { name: "h", type: "hardlink", link: "../etc/passwd" }]);
    await expectRefused(relative.archive, {
      entry: "h",
      message: 'refusing to restore "h": hardlink target "../etc/passwd" escapes the target',
      stopsAt: offsetOf(relative, 1),
    });
    const absolute = pyTar([{ name: "h", type: "hardlink", link: "/etc/passwd" }]);
    await expectRefused(absolute.archive, { entry: "h", message: /hardlink target "\/etc\/passwd" is an absolute path/, stopsAt: 0 });
  });

  it("a hardlink to an in-archive symlink is a symlink too (`d/up -> ..` is fine, `h` => `d/up` would be `h -> ..`)", async () => {
    const archive = pyTar([
      { name: "d/up", type: "symlink", link: ".." },
      { name: "h", type: "hardlink", link: "d/up" },
    ]);
    await expectRefused(archive.archive, { entry: "h", message: /hardlink to symlink "d\/up", target "\.\." escapes/, stopsAt: offsetOf(archive, 1) });
  });

  it("device files and FIFOs", async () => {
    for (const [name, type, reason] of [
      ["dev/sda", "blk", "device files are not restored"],
      ["dev/tty", "chr", "device files are not restored"],
      ["run/pipe", "fifo", "FIFOs are not restored"],
    ] as const) {
      const archive = pyTar([{ name: "ok.txt", data: "fine" }, { name, type }]);
      await expectRefused(archive.archive, {
        entry: name,
        message: `refusing to restore "${name}": ${reason}`,
        stopsAt: offsetOf(archive, 1),
      });
    }
  });

  it("sparse files, pax GNU.* extensions and unknown entry types", async () => {
    await expectRefused(tsArchive(tsEntry({ name: "sparse", type: "S" })), {
      entry: "sparse",
      message: /sparse files are not supported/,
      stopsAt: 0,
    });
    await expectRefused(tsArchive(tsPax({ "GNU.sparse.major": "1", "GNU.sparse.minor": "0" }), tsEntry({ name: "f" }, Buffer.from("x"))), {
      entry: "f",
      message: /unsupported pax keyword "GNU.sparse.major"/,
      stopsAt: 0,
    });
    await expectRefused(tsArchive(tsEntry({ name: "label", type: "V" })), {
      entry: "label",
      message: 'refusing to restore "label": unsupported entry type "V"',
      stopsAt: 0,
    });
  });

  it("writing through an in-archive symlink that has come to escape", async () => {
    // `e -> d/up/..` is `d` when it is written; `d/up -> ..` then makes it `..`.
    const archive = pyTar([
      { name: "d", type: "dir" },
      { name: "e", type: "symlink", link: "d/up/.." },
      { name: "d/up", type: "symlink", link: ".." },
      { name: "e/pwned.txt", data: "x" },
    ]);
    await expectRefused(archive.archive, {
      entry: "e/pwned.txt",
      message: 'refusing to restore "e/pwned.txt": path escapes the target through symlink "d/up"',
      stopsAt: offsetOf(archive, 3),
    });
  });

  it("an entry replacing an earlier symlink, or a symlink replacing a directory (tar may keep either)", async () => {
    const overSymlink = pyTar([{ name: "a", type: "symlink", link: "b" }, { name: "a", type: "dir" }]);
    await expectRefused(overSymlink.archive, { entry: "a/", message: /replaces the earlier symlink "a"/, stopsAt: offsetOf(overSymlink, 1) });
    const overDir = pyTar([{ name: "a/x", data: "x" }, { name: "a", type: "symlink", link: "b" }]);
    await expectRefused(overDir.archive, { entry: "a", message: /replaces a directory with a symlink/, stopsAt: offsetOf(overDir, 1) });
  });
});

describe("tar guard: symlink chains are checked again at the end of the archive", () => {
  it("`e -> d/up/..` followed by `d/up -> ..` fails at the end, naming `e`", async () => {
    const archive = pyTar([
      { name: "d", type: "dir" },
      { name: "e", type: "symlink", link: "d/up/.." },
      { name: "d/up", type: "symlink", link: ".." },
    ]);
    for (const chunkSize of [1, 64 * 1024]) {
      const { forwarded, error } = await feed(archive.archive, chunkSize);
      const lifeboatError = expectGuardError(error, "RESTORE_UNSAFE_ENTRY");
      expect(lifeboatError.message).toBe('refusing to restore "e": symlink target "d/up/.." escapes the target through symlink "d/up"');
      expect(lifeboatError.details?.entry).toBe("e");
      // each entry was fine when it was seen, so everything was forwarded
      expect(forwarded.equals(archive.archive)).toBe(true);
    }
  });
});

describe("tar guard: malformed archives are refused", () => {
  it("a header with a bad checksum", async () => {
    const good = pyTar([{ name: "a.txt", data: "a" }, { name: "b.txt", data: "b" }]);
    const archive = Buffer.from(good.archive);
    archive[offsetOf(good, 1)] = "c".charCodeAt(0);
    const error = await expectInvalid(archive, /header checksum mismatch/);
    expect(error.details?.offset).toBe(offsetOf(good, 1));
    const { forwarded } = await feed(archive, 1);
    expect(forwarded.equals(archive.subarray(0, offsetOf(good, 1)))).toBe(true);
  });

  it("truncated inside data, inside a header, or without the end-of-archive marker", async () => {
    const good = pyTar([{ name: "a.txt", data: "a".repeat(2000) }, { name: "b.txt", data: "b".repeat(700) }]);
    await expectInvalid(good.archive.subarray(0, offsetOf(good, 1) + 512 + 100), /truncated inside the data of "b.txt"/);
    await expectInvalid(good.archive.subarray(0, offsetOf(good, 1) + 200), /truncated inside a header/);
    await expectInvalid(good.archive.subarray(0, good.end), /no end-of-archive marker/);
    await expectInvalid(good.archive.subarray(0, good.end + 512), /incomplete end-of-archive marker/);
    await expectInvalid(Buffer.alloc(0), /no end-of-archive marker/);
  });

  it("a malformed size field or pax record", async () => {
    await expectInvalid(tsArchive(tsEntry({ name: "f", sizeField: Buffer.from("12x45\0\0\0\0\0\0\0", "latin1") })), /malformed size field/);
    const badPax = tsEntry({ name: "PaxHeader/f", type: "x" }, Buffer.from("99 path=x\n"));
    await expectInvalid(tsArchive(badPax, tsEntry({ name: "f" })), /malformed pax record/);
  });

  it("constructs GNU tar could read differently from the guard", async () => {
    const smuggled = padTo512(tsHeader({ name: "../../smuggled" }));
    // GNU tar 1.34 -x reads no data for a hardlink, a directory or a "file/"
    // (a directory to tar) and extracts the "data" as the next entry
    await expectInvalid(tsArchive(tsEntry({ name: "h", type: "1", link: "a", size: 512 }), smuggled), /hardlink "h" declares 512 bytes/);
    await expectInvalid(tsArchive(tsEntry({ name: "d/", type: "5" }, smuggled)), /dir entry "d\/" declares 512 bytes/);
    await expectInvalid(tsArchive(tsEntry({ name: "f/", type: "0" }, smuggled)), /dir entry "f\/" declares 512 bytes/);
    await expectInvalid(tsArchive(tsPax({ path: "a" }), tsPax({ path: "b" }), tsEntry({ name: "c" })), /two pax extended headers/);
    await expectInvalid(tsArchive(tsPax({ path: "../x" }, "g"), tsEntry({ name: "c" })), /global pax header sets "path"/);
    await expectInvalid(tsArchive(tsPax({ path: "a" })), /extended header is not followed by an entry/);
    // tar stops at a lone zero block; anything after it is not padding
    await expectInvalid(Buffer.concat([Buffer.alloc(512), tsEntry({ name: "late" }), END_OF_ARCHIVE]), /unexpected data after the end-of-archive marker/);
  });
});

describe("tar guard: end to end with GNU tar -x", () => {
  it("a symlink escape is stopped before tar sees it, and nothing lands outside the staging directory", async () => {
    const base = await newDir("e2e");
    const staging = join(base, "staging");
    const outside = join(base, "outside");
    await mkdir(staging);
    await mkdir(outside);
    const { archive } = pyTar([
      { name: "ok.txt", data: "fine" },
      { name: "escape", type: "symlink", link: "../outside" },
      { name: "escape/pwned.txt", data: "owned" },
      { name: "../outside/direct.txt", data: "owned" },
    ]);
    const { error } = await restoreThroughGuard(archive, staging);
    const lifeboatError = expectGuardError(error, "RESTORE_UNSAFE_ENTRY");
    expect(lifeboatError.details?.entry).toBe("escape");
    expect(lifeboatError.message).toBe('refusing to restore "escape": symlink target "../outside" escapes the target');
    expect(await readdir(outside)).toEqual([]);
    expect(existsSync(join(staging, "escape"))).toBe(false);
    expect((await readdir(base)).sort()).toEqual(["outside", "staging"]);
  });

  it("a `..` entry is stopped, naming the entry", async () => {
    const base = await newDir("e2e");
    const staging = join(base, "staging");
    await mkdir(staging);
    const { archive } = pyTar([{ name: "ok.txt", data: "fine" }, { name: "../direct.txt", data: "owned" }]);
    const { error } = await restoreThroughGuard(archive, staging);
    expect(expectGuardError(error, "RESTORE_UNSAFE_ENTRY").details?.entry).toBe("../direct.txt");
    expect((await readdir(base)).sort()).toEqual(["staging"]);
  });

  it("writing through a symlink chain is stopped, and nothing lands outside the staging directory", async () => {
    const base = await newDir("e2e");
    const staging = join(base, "staging");
    await mkdir(staging);
    const { archive } = pyTar([
      { name: "d", type: "dir" },
      { name: "e", type: "symlink", link: "d/up/.." },
      { name: "d/up", type: "symlink", link: ".." },
      { name: "e/pwned.txt", data: "owned" },
    ]);
    const { error } = await restoreThroughGuard(archive, staging);
    expect(expectGuardError(error, "RESTORE_UNSAFE_ENTRY").details?.entry).toBe("e/pwned.txt");
    expect((await readdir(base)).sort()).toEqual(["staging"]);
    expect(existsSync(join(staging, "pwned.txt"))).toBe(false);
  });
});

describe("tar guard: path helpers", () => {
  it("checkEntryName splits names and refuses absolute, `..` and empty ones", () => {
    expect(checkEntryName("./")).toEqual({ ok: true, components: [] });
    expect(checkEntryName("./a//b/./c/")).toEqual({ ok: true, components: ["a", "b", "c"] });
    expect(checkEntryName("a\\b")).toEqual({ ok: true, components: ["a\\b"] });
    expect(checkEntryName("")).toMatchObject({ ok: false, reason: "empty name" });
    expect(checkEntryName("/etc")).toMatchObject({ ok: false, reason: "absolute path" });
    expect(checkEntryName("C:x")).toMatchObject({ ok: false, reason: "absolute path" });
    expect(checkEntryName("a/..")).toMatchObject({ ok: false, reason: "path escapes the target" });
    expect(checkEntryName("a\\..\\..\\b")).toMatchObject({ ok: false, reason: "path escapes the target" });
  });

  it("resolveInsideRoot follows the archive's symlinks like the kernel would", () => {
    const none = new Map<string, string>();
    expect(resolveInsideRoot(["a", "b"], none)).toEqual({ status: "inside", components: ["a", "b"], key: "a/b" });
    expect(resolveInsideRoot(["a", "..", ".."], none)).toEqual({ status: "escapes", via: undefined });
    expect(resolveInsideRoot([], none)).toEqual({ status: "inside", components: [], key: "" });

    const up = new Map([["d/up", ".."]]);
    expect(resolveInsideRoot(["d", "up", "x"], up)).toEqual({ status: "inside", components: ["x"], key: "x" });
    expect(resolveInsideRoot(["d", "up", "..", "x"], up)).toEqual({ status: "escapes", via: "d/up" });

    const chain = new Map([
      ["e", "d/up/.."],
      ["d/up", ".."],
    ]);
    expect(resolveInsideRoot(["e"], chain)).toEqual({ status: "escapes", via: "d/up" });
    expect(resolveInsideRoot(["e"], chain, { followFinal: false })).toEqual({ status: "inside", components: ["e"], key: "e" });

    expect(resolveInsideRoot(["s", "x"], new Map([["s", "/etc"]]))).toEqual({ status: "escapes", via: "s" });
    expect(resolveInsideRoot(["a"], new Map([["a", "b"], ["b", "a"]]))).toMatchObject({ status: "loop" });
    const forty = new Map(Array.from({ length: 40 }, (_, i) => [`l${i}`, `l${i + 1}`] as [string, string]));
    expect(resolveInsideRoot(["l0"], forty)).toEqual({ status: "inside", components: ["l40"], key: "l40" });
    forty.set("l40", "l41");
    expect(resolveInsideRoot(["l0"], forty)).toMatchObject({ status: "loop" });
  });
});
