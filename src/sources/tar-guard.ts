/**
 * A pass-through stream that sits in front of `tar -x` during a restore and
 * refuses archives that would write outside the restore target.
 *
 * It parses the tar headers itself (ustar, GNU and pax, across arbitrary chunk
 * boundaries) and forwards the bytes unchanged, but an entry's header — and the
 * GNU long-name / pax records that precede it — is only forwarded after the
 * entry was checked. So when an entry is refused, `tar` has not seen a single
 * byte of it.
 *
 * Refused (`RESTORE_UNSAFE_ENTRY`): absolute names, names with a `..`
 * component, empty names; symlinks whose target is absolute or resolves outside
 * the root; hardlinks whose target is absolute or has a `..` component;
 * character/block devices, FIFOs, sparse files and unknown entry types; any
 * path that goes through an earlier symlink of the archive and resolves
 * outside the root. At the end of the archive every symlink is resolved again
 * against all symlinks of the archive (a later symlink can make an earlier one
 * escape); that last check fails in `_flush`, after everything was forwarded,
 * so the caller must restore into a staging directory and discard it on error.
 *
 * Malformed archives are refused with `RESTORE_TAR_INVALID`: bad header
 * checksums, malformed numeric fields or pax records, truncation, data after
 * the end-of-archive marker, and every construct where GNU tar might read the
 * stream differently from this parser (a hardlink, symlink or directory that
 * declares data, two long-name records for one entry, …). Agreeing with tar
 * about where each header starts is what makes the checks meaningful, so when
 * in doubt the guard refuses.
 */
import { Transform, type TransformCallback } from "node:stream";
import { LifeboatError } from "../model/errors.js";

const BLOCK = 512;
/** Linux follows at most 40 symlinks in one lookup (MAXSYMLINKS); other systems fewer. */
export const MAX_SYMLINK_FOLLOWS = 40;
/** Upper bound on the work of one resolution (components processed). */
const MAX_RESOLVE_STEPS = 1 << 17;
/** GNU `L`/`K` records: names longer than this cannot be created anyway (PATH_MAX is 4096). */
const MAX_LONG_NAME = 1 << 20;
/** pax `x`/`g` records (may carry xattrs and ACLs). */
const MAX_PAX_HEADER = 16 << 20;
/** symlink(2) refuses targets of PATH_MAX (4096) bytes or more. */
const MAX_SYMLINK_TARGET = 4095;

const TYPE_LONGNAME = 0x4c; // 'L'
const TYPE_LONGLINK = 0x4b; // 'K'
const TYPE_PAX = 0x78; // 'x'
const TYPE_PAX_GLOBAL = 0x67; // 'g'

// ---------------------------------------------------------------------------
// Pure helpers (exported for tests)
// ---------------------------------------------------------------------------

/** Result of resolving a path inside the virtual tree of an archive. */
export type Resolution =
  /** the path stays inside the root; `components` is where it lands (no symlinks, no `.`/`..`) */
  | { status: "inside"; components: string[]; key: string }
  /** the path leaves the root; `via` is the last symlink followed before it did, if any */
  | { status: "escapes"; via: string | undefined }
  /** more than `maxFollows` symlinks (a loop): the kernel refuses such a lookup with ELOOP */
  | { status: "loop"; via: string };

export interface ResolveOptions {
  /** Also follow the last component when it is a symlink (default true). */
  followFinal?: boolean;
  /** Maximum number of symlinks followed (default {@link MAX_SYMLINK_FOLLOWS}). */
  maxFollows?: number;
}

/**
 * True for names a restore must treat as absolute: a leading `/`, a leading
 * backslash, or a Windows drive letter (`C:`).
 */
export function isAbsoluteName(name: string): boolean {
  return name.startsWith("/") || name.startsWith("\\") || /^[A-Za-z]:/.test(name);
}

/**
 * Resolves `components` (relative to the restore root) the way the kernel
 * would, through the symlinks of `symlinks` (root-relative location without
 * `.`/`..`, components joined by `/` → link target as stored in the archive).
 * A relative target is resolved against the directory of the link, an absolute
 * target escapes, and `..` at the root escapes (the root is a directory inside
 * some larger file system, so even leaving it and coming back in counts).
 */
export function resolveInsideRoot(
  components: readonly string[],
  symlinks: ReadonlyMap<string, string>,
  options: ResolveOptions = {},
): Resolution {
  const followFinal = options.followFinal ?? true;
  const maxFollows = options.maxFollows ?? MAX_SYMLINK_FOLLOWS;
  const pending: string[] = [];
  for (let i = components.length - 1; i >= 0; i--) pending.push(components[i] as string);
  const out: string[] = [];
  const keys: string[] = [];
  let follows = 0;
  let steps = 0;
  let via: string | undefined;
  while (pending.length > 0) {
    if (++steps > MAX_RESOLVE_STEPS) return { status: "loop", via: via ?? "" };
    const part = pending.pop() as string;
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (out.length === 0) return { status: "escapes", via };
      out.pop();
      keys.pop();
      continue;
    }
    const parentKey = keys[keys.length - 1];
    const key = parentKey === undefined ? part : `${parentKey}/${part}`;
    // Anything left after this component (even "" or "." from a trailing
    // slash) makes the kernel follow it.
    if (symlinks.size > 0 && (followFinal || pending.length > 0)) {
      const target = symlinks.get(key);
      if (target !== undefined) {
        if (++follows > maxFollows) return { status: "loop", via: key };
        via = key;
        if (isAbsoluteName(target)) return { status: "escapes", via: key };
        const parts = target.split("/");
        for (let i = parts.length - 1; i >= 0; i--) pending.push(parts[i] as string);
        continue;
      }
    }
    out.push(part);
    keys.push(key);
  }
  return { status: "inside", components: out, key: keys[keys.length - 1] ?? "" };
}

/**
 * Checks an entry name by itself: not empty, not absolute, no `..` component
 * (backslashes count as separators here, so `..\x` is refused too). Returns the
 * components without empty and `.` parts; `[]` names the root itself (`./`).
 */
export function checkEntryName(
  name: string,
): { ok: true; components: string[] } | { ok: false; reason: string } {
  if (name.length === 0) return { ok: false, reason: "empty name" };
  if (name.includes("\0")) return { ok: false, reason: "name contains a NUL byte" };
  if (isAbsoluteName(name)) return { ok: false, reason: "absolute path" };
  if (name.split(/[/\\]/).includes("..")) return { ok: false, reason: "path escapes the target" };
  return { ok: true, components: name.split("/").filter((part) => part !== "" && part !== ".") };
}

/**
 * Parses a numeric header field the way GNU tar does, but only the forms GNU
 * tar and other common writers produce: optional leading spaces, octal digits,
 * then NUL/space or the end of the field; or positive base-256 (first byte
 * 0x80). Anything else (negative, base-64, garbage) → undefined.
 */
export function parseNumericField(field: Uint8Array): number | undefined {
  if (field.length === 0) return undefined;
  if (field[0] === 0x80) {
    let value = 0;
    for (let i = 1; i < field.length; i++) {
      value = value * 256 + (field[i] as number);
      if (value > Number.MAX_SAFE_INTEGER) return undefined;
    }
    return value;
  }
  let i = 0;
  while (i < field.length && field[i] === 0x20) i++;
  const start = i;
  let value = 0;
  while (i < field.length) {
    const c = field[i] as number;
    if (c < 0x30 || c > 0x37) break;
    value = value * 8 + (c - 0x30);
    i++;
  }
  if (i === start) return undefined;
  if (i < field.length && field[i] !== 0 && field[i] !== 0x20) return undefined;
  return value;
}

/** True when the header checksum matches (POSIX unsigned sum, or the old signed sum; GNU tar accepts both). */
export function headerChecksumOk(header: Uint8Array): boolean {
  const recorded = parseNumericField(header.subarray(148, 156));
  if (recorded === undefined || header[148] === 0x80) return false;
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const byte = i >= 148 && i < 156 ? 0x20 : (header[i] as number);
    unsigned += byte;
    signed += byte > 127 ? byte - 256 : byte;
  }
  return recorded === unsigned || recorded === signed;
}

// ---------------------------------------------------------------------------
// The stream
// ---------------------------------------------------------------------------

/**
 * Creates the guard. Pipe the archive through it into `tar -x`; it errors with
 * a `LifeboatError` (`RESTORE_UNSAFE_ENTRY` or `RESTORE_TAR_INVALID`, kind
 * "verification") before forwarding any byte of an offending entry, or in
 * `_flush` when the final symlink check fails.
 */
export function createTarGuard(): Transform {
  return new TarGuard();
}

type Phase = "header" | "data" | "meta" | "end";
type EntryKind = "file" | "dir" | "symlink" | "hardlink";

interface MetaRecord {
  type: number;
  offset: number;
  header: Buffer;
  size: number;
  data: Buffer;
  fill: number;
}

interface PaxOverrides {
  path?: string;
  linkpath?: string;
  size?: number;
  /** set when the record uses a feature the guard does not support (sparse, incremental, multi-volume) */
  unsupported?: string;
}

interface SymlinkRecord {
  /** the archive name of the entry that created it (for messages) */
  entry: string;
  /** where it was created: root-relative directory components (no symlinks) */
  dir: string[];
  target: string;
}

class TarGuard extends Transform {
  #phase: Phase = "header";
  /** input bytes consumed so far (offsets in messages) */
  #offset = 0;
  readonly #block = Buffer.alloc(BLOCK);
  #blockFill = 0;
  /** bytes (including padding) of the current entry's data still to forward */
  #dataLeft = 0;
  #dataEntry = "";
  #meta: MetaRecord | undefined;
  /** L/K/x records waiting for the entry they describe */
  #held: Buffer[] = [];
  #heldOffset = 0;
  #longName: string | undefined;
  #longLink: string | undefined;
  #pax: PaxOverrides | undefined;
  /** zero bytes seen from the first end-of-archive block on */
  #zeroBytes = 0;
  /** location → target of every symlink restored so far */
  readonly #symlinks = new Map<string, string>();
  readonly #symlinkRecords: SymlinkRecord[] = [];
  /** locations known to be directories (explicit entries and parents of entries); prefix-closed */
  readonly #dirs = new Set<string>();
  #error: Error | undefined;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.#error) {
      callback(this.#error);
      return;
    }
    try {
      this.#consume(chunk);
      callback();
    } catch (error) {
      this.#error = error as Error;
      callback(this.#error);
    }
  }

  override _flush(callback: TransformCallback): void {
    if (this.#error) {
      callback(this.#error);
      return;
    }
    try {
      this.#finish();
      callback();
    } catch (error) {
      this.#error = error as Error;
      callback(this.#error);
    }
  }

  #consume(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length) {
      const available = chunk.length - pos;
      switch (this.#phase) {
        case "data": {
          const n = Math.min(available, this.#dataLeft);
          this.push(chunk.subarray(pos, pos + n));
          pos += n;
          this.#offset += n;
          this.#dataLeft -= n;
          if (this.#dataLeft === 0) this.#phase = "header";
          break;
        }
        case "header": {
          const n = Math.min(available, BLOCK - this.#blockFill);
          chunk.copy(this.#block, this.#blockFill, pos, pos + n);
          this.#blockFill += n;
          pos += n;
          if (this.#blockFill === BLOCK) {
            this.#blockFill = 0;
            const at = this.#offset;
            this.#offset += BLOCK;
            this.#onHeader(Buffer.from(this.#block), at);
          }
          break;
        }
        case "meta": {
          const meta = this.#meta as MetaRecord;
          const n = Math.min(available, meta.data.length - meta.fill);
          chunk.copy(meta.data, meta.fill, pos, pos + n);
          meta.fill += n;
          pos += n;
          this.#offset += n;
          if (meta.fill === meta.data.length) {
            this.#meta = undefined;
            this.#phase = "header";
            this.#onMeta(meta);
          }
          break;
        }
        case "end": {
          const rest = chunk.subarray(pos);
          const nonZero = rest.findIndex((byte) => byte !== 0);
          if (nonZero >= 0) {
            throw invalid("unexpected data after the end-of-archive marker", this.#offset + nonZero);
          }
          this.push(rest);
          this.#offset += rest.length;
          this.#zeroBytes += rest.length;
          pos = chunk.length;
          break;
        }
      }
    }
  }

  #finish(): void {
    switch (this.#phase) {
      case "data":
        throw invalid(`truncated inside the data of ${quote(this.#dataEntry)}`, this.#offset, this.#dataEntry);
      case "meta":
        throw invalid("truncated inside an extended header", this.#offset);
      case "header":
        throw invalid(
          this.#blockFill > 0 || this.#held.length > 0
            ? "truncated inside a header"
            : "truncated: no end-of-archive marker",
          this.#offset + this.#blockFill,
        );
      case "end":
        if (this.#zeroBytes < 2 * BLOCK) {
          throw invalid("truncated: incomplete end-of-archive marker", this.#offset);
        }
    }
    // A later symlink can make an earlier one escape (`e -> d/up/..`, then
    // `d/up -> ..`): resolve every symlink again against the complete table.
    for (const link of this.#symlinkRecords) {
      const resolved = resolveInsideRoot([...link.dir, ...link.target.split("/")], this.#symlinks);
      if (resolved.status === "escapes") {
        throw unsafe(
          link.entry,
          `symlink target ${quote(link.target)} escapes the target${through(resolved.via)}`,
        );
      }
    }
  }

  #onHeader(block: Buffer, at: number): void {
    if (isZero(block)) {
      if (this.#held.length > 0) {
        throw invalid("extended header is not followed by an entry", this.#heldOffset);
      }
      this.#phase = "end";
      this.#zeroBytes = BLOCK;
      this.push(block);
      return;
    }
    if (!headerChecksumOk(block)) throw invalid("header checksum mismatch", at);
    const type = block[156] as number;
    if (type === TYPE_LONGNAME || type === TYPE_LONGLINK || type === TYPE_PAX || type === TYPE_PAX_GLOBAL) {
      this.#startMeta(block, at, type);
    } else {
      this.#onEntry(block, at);
    }
  }

  #startMeta(header: Buffer, at: number, type: number): void {
    const what = metaName(type);
    const size = parseNumericField(header.subarray(124, 136));
    if (size === undefined) throw invalid(`malformed size field in ${what}`, at);
    const limit = type === TYPE_PAX || type === TYPE_PAX_GLOBAL ? MAX_PAX_HEADER : MAX_LONG_NAME;
    if (size > limit) throw invalid(`${what} of ${size} bytes is too large`, at);
    // GNU tar keeps only the last record of each kind; two for one entry never
    // come from a normal writer, so refuse rather than guess which one counts.
    if (
      (type === TYPE_LONGNAME && this.#longName !== undefined) ||
      (type === TYPE_LONGLINK && this.#longLink !== undefined) ||
      (type === TYPE_PAX && this.#pax !== undefined)
    ) {
      throw invalid(`two ${what}s for one entry`, at);
    }
    if (type === TYPE_PAX_GLOBAL && this.#held.length > 0) {
      throw invalid("global pax header between an entry's extended headers", at);
    }
    const meta: MetaRecord = { type, offset: at, header, size, data: Buffer.alloc(padded(size)), fill: 0 };
    if (meta.data.length === 0) {
      this.#onMeta(meta);
    } else {
      this.#meta = meta;
      this.#phase = "meta";
    }
  }

  #onMeta(meta: MetaRecord): void {
    const content = meta.data.subarray(0, meta.size);
    if (meta.type === TYPE_PAX_GLOBAL) {
      const records = parsePaxRecords(content, meta.offset);
      for (const keyword of records.keys()) {
        if (keyword === "path" || keyword === "linkpath" || keyword === "size" || keyword.startsWith("GNU.")) {
          throw invalid(`global pax header sets ${quote(keyword)}`, meta.offset);
        }
      }
      this.push(meta.header);
      if (meta.data.length > 0) this.push(meta.data);
      return;
    }
    if (this.#held.length === 0) this.#heldOffset = meta.offset;
    this.#held.push(meta.header);
    if (meta.data.length > 0) this.#held.push(meta.data);
    if (meta.type === TYPE_LONGNAME) this.#longName = cString(content);
    else if (meta.type === TYPE_LONGLINK) this.#longLink = cString(content);
    else this.#pax = paxOverrides(parsePaxRecords(content, meta.offset), meta.offset);
  }

  #onEntry(header: Buffer, at: number): void {
    const typeflag = header[156] as number;
    const name = this.#pax?.path ?? this.#longName ?? headerName(header);
    const linkTarget = this.#pax?.linkpath ?? this.#longLink ?? cString(header.subarray(157, 257));
    const unsupported = this.#pax?.unsupported;
    const paxSize = this.#pax?.size;
    this.#longName = undefined;
    this.#longLink = undefined;
    this.#pax = undefined;

    const headerSize = parseNumericField(header.subarray(124, 136));
    if (headerSize === undefined) throw invalid(`malformed size field of ${quote(name)}`, at, name);
    const size = paxSize ?? headerSize;

    let kind: EntryKind;
    switch (typeflag) {
      case 0x30: // '0'
      case 0x00: // old regular file
      case 0x37: // '7' contiguous file
        // GNU tar (like BSD tar) extracts a "regular file" whose name ends in
        // a slash as a directory, and then reads no data for it.
        kind = name.endsWith("/") ? "dir" : "file";
        break;
      case 0x31: // '1'
        // GNU tar ignores the size field of hardlinks; refuse a non-zero one.
        if (headerSize !== 0) throw invalid(`hardlink ${quote(name)} declares ${headerSize} bytes of data`, at, name);
        kind = "hardlink";
        break;
      case 0x32: // '2'
        kind = "symlink";
        break;
      case 0x35: // '5'
        kind = "dir";
        break;
      case 0x33: // '3'
      case 0x34: // '4'
        throw unsafe(name, "device files are not restored");
      case 0x36: // '6'
        throw unsafe(name, "FIFOs are not restored");
      case 0x53: // 'S'
        throw unsafe(name, "sparse files are not supported");
      default:
        throw unsafe(name, `unsupported entry type ${quote(String.fromCharCode(typeflag))}`);
    }
    if (unsupported !== undefined) throw unsafe(name, unsupported);
    if (kind !== "file" && size !== 0) {
      throw invalid(`${kind} entry ${quote(name)} declares ${size} bytes of data`, at, name);
    }

    this.#checkEntry(kind, name, linkTarget);

    for (const held of this.#held) this.push(held);
    this.#held = [];
    this.push(header);
    this.#dataLeft = kind === "file" ? padded(size) : 0;
    this.#dataEntry = name;
    if (this.#dataLeft > 0) this.#phase = "data";
  }

  #checkEntry(kind: EntryKind, name: string, linkTarget: string): void {
    const checked = checkEntryName(name);
    if (!checked.ok) throw unsafe(name, checked.reason);
    const components = checked.components;
    const last = components[components.length - 1];
    if (last === undefined) {
      if (kind === "dir") return; // "./": the root itself
      throw unsafe(name, "the name denotes the target directory itself");
    }
    const parent = this.#resolveDirectory(components.slice(0, -1), name, "path");
    this.#noteDirectory(parent.key);
    const location = parent.key === "" ? last : `${parent.key}/${last}`;
    // A later entry of the same name may or may not replace a symlink in
    // reality (tar keeps a symlink to a directory, replaces a dangling one),
    // so the virtual table could drift from the disk: refuse.
    if (this.#symlinks.has(location)) {
      throw unsafe(name, `replaces the earlier symlink ${quote(location)}`);
    }

    switch (kind) {
      case "file":
        return;
      case "dir":
        this.#noteDirectory(location);
        return;
      case "symlink":
        this.#addSymlink(name, parent.components, location, linkTarget, "symlink target");
        return;
      case "hardlink": {
        if (linkTarget === "") throw unsafe(name, "empty hardlink target");
        const shown = quote(linkTarget);
        if (linkTarget.includes("\0")) throw unsafe(name, `hardlink target ${shown} contains a NUL byte`);
        if (isAbsoluteName(linkTarget)) throw unsafe(name, `hardlink target ${shown} is an absolute path`);
        if (linkTarget.split(/[/\\]/).includes("..")) {
          throw unsafe(name, `hardlink target ${shown} escapes the target`);
        }
        const targetComponents = linkTarget.split("/").filter((part) => part !== "" && part !== ".");
        const targetLast = targetComponents[targetComponents.length - 1];
        if (targetLast === undefined) throw unsafe(name, `hardlink target ${shown} is the target directory itself`);
        const targetParent = this.#resolveDirectory(targetComponents.slice(0, -1), name, `hardlink target ${shown}`);
        const targetLocation = targetParent.key === "" ? targetLast : `${targetParent.key}/${targetLast}`;
        // link(2) does not follow a final symlink: a hardlink to a symlink is
        // another symlink with the same target, relative to its own directory.
        const symlinkTarget = this.#symlinks.get(targetLocation);
        if (symlinkTarget !== undefined) {
          this.#addSymlink(name, parent.components, location, symlinkTarget, `hardlink to symlink ${shown}, target`);
        }
        return;
      }
    }
  }

  #addSymlink(name: string, dir: string[], location: string, target: string, what: string): void {
    if (target === "") throw unsafe(name, `empty ${what}`);
    const shown = quote(target);
    if (target.length > MAX_SYMLINK_TARGET) throw unsafe(name, `${what} is too long`);
    if (target.includes("\0")) throw unsafe(name, `${what} ${shown} contains a NUL byte`);
    if (isAbsoluteName(target)) throw unsafe(name, `${what} ${shown} escapes the target (absolute path)`);
    if (this.#dirs.has(location)) throw unsafe(name, "replaces a directory with a symlink");
    const resolved = resolveInsideRoot([...dir, ...target.split("/")], this.#symlinks);
    // "loop": the kernel gives up (ELOOP), so the link dangles; harmless.
    if (resolved.status === "escapes") throw unsafe(name, `${what} ${shown} escapes the target${through(resolved.via)}`);
    this.#symlinks.set(location, target);
    this.#symlinkRecords.push({ entry: name, dir, target });
  }

  /** Resolves the directory an entry (or a hardlink target) is written into; it must stay inside. */
  #resolveDirectory(components: string[], name: string, what: string): { components: string[]; key: string } {
    const resolved = resolveInsideRoot(components, this.#symlinks);
    switch (resolved.status) {
      case "inside":
        return resolved;
      case "escapes":
        throw unsafe(name, `${what} escapes the target${through(resolved.via)}`);
      case "loop":
        throw unsafe(name, `${what} has too many levels of symbolic links (at ${quote(resolved.via)})`);
    }
  }

  /** Records `key` and its ancestors as directories (the set stays prefix-closed). */
  #noteDirectory(key: string): void {
    while (key !== "" && !this.#dirs.has(key)) {
      this.#dirs.add(key);
      const slash = key.lastIndexOf("/");
      key = slash < 0 ? "" : key.slice(0, slash);
    }
  }
}

// ---------------------------------------------------------------------------
// Header and pax parsing
// ---------------------------------------------------------------------------

/** Names are kept as latin1 strings: one char per byte, so distinct byte strings stay distinct. */
function cString(bytes: Uint8Array): string {
  const nul = bytes.indexOf(0);
  return Buffer.from(bytes.buffer, bytes.byteOffset, nul < 0 ? bytes.length : nul).toString("latin1");
}

/** The name GNU tar reads from a header: ustar prefix + "/" + name, or just name. */
function headerName(header: Buffer): string {
  const name = cString(header.subarray(0, 100));
  const ustar = header.toString("latin1", 257, 263) === "ustar\0";
  if (ustar && header[345] !== 0) return `${cString(header.subarray(345, 500))}/${name}`;
  return name;
}

function isZero(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}

function padded(size: number): number {
  return Math.ceil(size / BLOCK) * BLOCK;
}

function metaName(type: number): string {
  switch (type) {
    case TYPE_LONGNAME:
      return "GNU long-name record";
    case TYPE_LONGLINK:
      return "GNU long-link record";
    case TYPE_PAX:
      return "pax extended header";
    default:
      return "pax global header";
  }
}

/**
 * Parses pax records (`"<len> <keyword>=<value>\n"`), strictly: any malformed
 * record refuses the archive. Like GNU tar, parsing stops at a NUL where a
 * record would start, and a later record overrides an earlier one.
 */
function parsePaxRecords(data: Buffer, at: number): Map<string, string> {
  const records = new Map<string, string>();
  let pos = 0;
  while (pos < data.length && data[pos] !== 0) {
    let digitsEnd = pos;
    while (digitsEnd < data.length && digitsEnd - pos <= 12) {
      const c = data[digitsEnd] as number;
      if (c < 0x30 || c > 0x39) break;
      digitsEnd++;
    }
    if (digitsEnd === pos || digitsEnd - pos > 12 || data[digitsEnd] !== 0x20) {
      throw invalid("malformed pax record length", at);
    }
    const length = Number(data.toString("latin1", pos, digitsEnd));
    const end = pos + length;
    if (end > data.length || end <= digitsEnd + 1 || data[end - 1] !== 0x0a) {
      throw invalid("malformed pax record", at);
    }
    const equals = data.indexOf(0x3d, digitsEnd + 1);
    if (equals <= digitsEnd + 1 || equals >= end - 1) throw invalid("malformed pax record: no keyword", at);
    const keyword = data.toString("latin1", digitsEnd + 1, equals);
    if (keyword.includes("\0")) throw invalid("malformed pax record keyword", at);
    records.set(keyword, data.toString("latin1", equals + 1, end - 1));
    pos = end;
  }
  return records;
}

function paxOverrides(records: Map<string, string>, at: number): PaxOverrides {
  const result: PaxOverrides = {};
  for (const [keyword, value] of records) {
    switch (keyword) {
      case "path":
      case "linkpath":
        // GNU tar ignores an empty path (and truncates at a NUL): refuse both.
        if (value === "" || value.includes("\0")) throw invalid(`pax ${keyword} is empty or contains a NUL byte`, at);
        result[keyword] = value;
        break;
      case "size":
        if (!/^[0-9]{1,16}$/.test(value) || Number(value) > Number.MAX_SAFE_INTEGER) {
          throw invalid(`malformed pax size ${quote(value)}`, at);
        }
        result.size = Number(value);
        break;
      default:
        // GNU.sparse.* (sparse files), GNU.dumpdir (incremental) and GNU.volume.*
        // (multi-volume) change how tar reads the data: not supported.
        if (keyword.startsWith("GNU.") && result.unsupported === undefined) {
          result.unsupported = `unsupported pax keyword ${quote(keyword)} (sparse, incremental and multi-volume archives are not supported)`;
        }
    }
  }
  return result;
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/** A latin1 (byte) string shown as UTF-8. */
function display(name: string): string {
  return Buffer.from(name, "latin1").toString("utf8");
}

function quote(name: string): string {
  const shown = display(name);
  return JSON.stringify(shown.length > 300 ? `${shown.slice(0, 300)}…` : shown);
}

function through(via: string | undefined): string {
  return via === undefined ? "" : ` through symlink ${quote(via)}`;
}

function unsafe(entry: string, reason: string): LifeboatError {
  return new LifeboatError("RESTORE_UNSAFE_ENTRY", `refusing to restore ${quote(entry)}: ${reason}`, {
    kind: "verification",
    hint: "the backup contains an entry that could write outside the restore target and may have been tampered with; list it with `tar -tvf`",
    details: { entry: display(entry), reason },
  });
}

function invalid(reason: string, offset: number, entry?: string): LifeboatError {
  return new LifeboatError("RESTORE_TAR_INVALID", `invalid tar archive: ${reason} (at byte ${offset})`, {
    kind: "verification",
    hint: "the backup is damaged or was not written by GNU tar",
    details: entry === undefined ? { reason, offset } : { reason, offset, entry: display(entry) },
  });
}
