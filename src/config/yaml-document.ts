import { LineCounter, isMap, isPair, isScalar, isSeq, parseDocument, type Document, type Node } from "yaml";
import type { Diagnostic } from "./diagnostics.js";

/**
 * YAML text → plain data, keeping enough of the syntax tree to point every
 * later problem at a line and column. The only `yaml` import.
 *
 * Hostile input is refused here: files over 1 MiB, alias bombs (more than 100
 * alias expansions), duplicate keys, and keys that could pollute prototypes.
 */
export const MAX_CONFIG_BYTES = 1024 * 1024;
const MAX_ALIAS_COUNT = 100;
const MAX_SYNTAX_ERRORS = 3;
const FORBIDDEN_KEYS = new Set(["__proto__", "constructor", "prototype"]);

export type Path = ReadonlyArray<string | number>;

export interface ParsedYaml {
  data: unknown;
  diagnostics: Diagnostic[];
  /** Where the value at `path` starts (or, with `key`, where its key starts). */
  locate(path: Path, options?: { key?: boolean }): { line: number; col: number; length: number };
}

export function parseYaml(file: string, text: string): ParsedYaml {
  const lineCounter = new LineCounter();
  const diagnostics: Diagnostic[] = [];
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false, strict: true });

  const at = (offset: number, length = 1) => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, col, length: Math.max(1, length) };
  };
  const report = (offset: number, length: number, message: string, rule: Diagnostic["rule"], severity: Diagnostic["severity"] = "error") =>
    diagnostics.push({ file, ...at(offset, length), message, rule, severity });

  // After the first few syntax errors the rest are nearly always its echoes.
  const shownErrors = doc.errors.slice(0, MAX_SYNTAX_ERRORS);
  for (const error of shownErrors) {
    const [start, end] = error.pos;
    if (error.code === "DUPLICATE_KEY") {
      const key = /^[^:\n]*/.exec(text.slice(start))?.[0]?.trim() ?? "";
      report(start, Math.max(key.length, 1), `duplicate key ${JSON.stringify(key.replace(/^["']|["']$/g, ""))}; a key may appear only once in a mapping`, "syntax");
    } else {
      const line = text.slice(text.lastIndexOf("\n", start) + 1, text.indexOf("\n", start) === -1 ? undefined : text.indexOf("\n", start));
      const hint = /[{[][^}\]]*\$\{/.test(line) ? ' (inside { } or [ ], quote values that contain ${…}: "${env:NAME}")' : "";
      report(start, end - start, `${yamlMessage(error.message)}${hint}`, "syntax");
    }
  }
  if (doc.errors.length > shownErrors.length) {
    const last = shownErrors[shownErrors.length - 1]!;
    const more = doc.errors.length - shownErrors.length;
    report(Math.max(last.pos[1], last.pos[0] + 1), 1, `${more} more syntax error${more === 1 ? "" : "s"} follow; fix the first ones and run again`, "syntax");
  }
  for (const warning of doc.warnings) {
    report(warning.pos[0], warning.pos[1] - warning.pos[0], yamlMessage(warning.message), "syntax", "warning");
  }

  let data: unknown = undefined;
  if (doc.errors.length === 0) {
    checkKeys(doc.contents as Node | null, (offset, length, message) => report(offset, length, message, "security"));
    if (diagnostics.every((d) => d.severity !== "error")) {
      try {
        data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
      } catch (error) {
        report(0, 1, `cannot read the document: ${(error as Error).message}`, "security");
      }
    }
  }

  const locate = (path: Path, options: { key?: boolean } = {}) => {
    const found = findNode(doc, path, options.key ?? false);
    return found ? at(found[0], found[1] - found[0]) : at(0, 1);
  };

  return { data, diagnostics, locate };
}

function yamlMessage(message: string): string {
  const first = message.split("\n")[0] ?? message;
  return first.replace(/ at line \d+, column \d+:?$/, "").replace(/\.$/, "").replace(/^./, (c) => c.toLowerCase());
}

/** Keys must be plain strings and must not be `__proto__`, `constructor` or `prototype`. */
function checkKeys(node: Node | null, report: (offset: number, length: number, message: string) => void): void {
  if (!node) return;
  if (isMap(node)) {
    for (const pair of node.items) {
      const key = pair.key as Node | null;
      if (isScalar(key)) {
        const name = String(key.value);
        const [start, end] = key.range ?? [0, 1];
        if (typeof key.value !== "string" && typeof key.value !== "number") {
          report(start, end - start, `key ${JSON.stringify(name)} must be a plain string`);
        } else if (FORBIDDEN_KEYS.has(name)) {
          report(start, end - start, `key "${name}" is not allowed (it could change object prototypes)`);
        }
      } else if (key) {
        const [start, end] = key.range ?? [0, 1];
        report(start, end - start, "keys must be plain strings");
      }
      checkKeys(pair.value as Node | null, report);
    }
  } else if (isSeq(node)) {
    for (const item of node.items) checkKeys(item as Node | null, report);
  }
}

function findNode(doc: Document, path: Path, wantKey: boolean): [number, number] | undefined {
  let node: unknown = doc.contents;
  let best: [number, number] | undefined = rangeOf(node);
  for (let i = 0; i < path.length; i++) {
    const segment = path[i];
    const last = i === path.length - 1;
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(segment));
      if (!pair) return best;
      if (last && wantKey) return rangeOf(pair.key) ?? best;
      node = pair.value;
      best = rangeOf(node) ?? rangeOf(pair.key) ?? best;
    } else if (isSeq(node) && typeof segment === "number") {
      node = node.items[segment];
      best = rangeOf(node) ?? best;
    } else {
      return best;
    }
  }
  return best;
}

function rangeOf(node: unknown): [number, number] | undefined {
  const range = (node as { range?: [number, number, number] } | null)?.range;
  return range ? [range[0], range[1]] : undefined;
}
