import type { z } from "zod";
import type { Path } from "./yaml-document.js";

/**
 * Turns zod issues into messages that name the field, its owner and what was
 * expected, e.g. `unknown key "retension" in job "orders-db"; expected one of: …`.
 */
export interface SchemaProblem {
  path: Path;
  /** Point at the key itself rather than its value. */
  atKey: boolean;
  message: string;
}

const OWNERS: Record<string, string> = { jobs: "job", storage: "storage", drills: "drill", scratch: "scratch" };

/** `job "orders-db" source` for ["jobs", "orders-db", "source", …]. */
export function ownerOf(path: Path): string {
  const parts: string[] = [];
  for (let i = 0; i < path.length; i++) {
    const segment = path[i]!;
    const owner = i === 0 ? OWNERS[String(segment)] : undefined;
    if (owner && i + 1 < path.length) {
      parts.push(`${owner} "${path[i + 1]}"`);
      i++;
    } else if (typeof segment === "number") {
      parts[parts.length - 1] = `${parts[parts.length - 1] ?? ""}[${segment}]`;
    } else {
      parts.push(String(segment));
    }
  }
  return parts.length ? `in ${parts.join(" ")}` : "at the top level";
}

function field(path: Path): { name: string; owner: string } {
  const last = path[path.length - 1];
  if (typeof last === "number") {
    const name = `${String(path[path.length - 2])}[${last}]`;
    return { name, owner: ownerOf(path.slice(0, -2)) };
  }
  return { name: String(last ?? "(document)"), owner: ownerOf(path.slice(0, -1)) };
}

function valueAt(data: unknown, path: Path): unknown {
  let value = data;
  for (const segment of path) {
    if (value === null || typeof value !== "object") return undefined;
    if (!Object.prototype.hasOwnProperty.call(value, segment)) return undefined;
    value = (value as Record<string | number, unknown>)[segment];
  }
  return value;
}

function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  if (typeof value === "string") return `"${value.length > 40 ? `${value.slice(0, 40)}…` : value}"`;
  return `${typeof value} ${String(value)}`;
}

const EXPECTED_NAMES: Record<string, string> = {
  string: "a string",
  number: "a number",
  int: "an integer",
  boolean: "true or false",
  array: "a list",
  object: "a mapping",
  record: "a mapping",
};

/** Keys a strict object at `path` accepts, by walking the schema along the data. */
export function expectedKeysAt(schema: z.ZodType, data: unknown, path: Path): string[] {
  let node: z.ZodType | undefined = schema;
  for (let i = 0; i <= path.length && node; i++) {
    node = unwrap(node, valueAt(data, path.slice(0, i)));
    if (i === path.length) break;
    const def = (node as unknown as { _zod: { def: Record<string, unknown> } })._zod.def;
    const segment = path[i]!;
    if (def.type === "object") node = (def.shape as Record<string, z.ZodType>)[String(segment)];
    else if (def.type === "record") node = def.valueType as z.ZodType;
    else if (def.type === "array") node = def.element as z.ZodType;
    else return [];
  }
  if (!node) return [];
  const def = (node as unknown as { _zod: { def: Record<string, unknown> } })._zod.def;
  return def.type === "object" ? Object.keys(def.shape as object) : [];
}

function unwrap(schema: z.ZodType, value: unknown): z.ZodType {
  let node = schema;
  for (let guard = 0; guard < 10; guard++) {
    const def = (node as unknown as { _zod: { def: Record<string, unknown> } })._zod.def;
    if (def.type === "optional" || def.type === "default" || def.type === "nullable" || def.type === "prefault") {
      node = def.innerType as z.ZodType;
    } else if (def.type === "pipe") {
      node = def.in as z.ZodType;
    } else if (def.type === "union" && typeof def.discriminator === "string" && value && typeof value === "object") {
      const wanted = (value as Record<string, unknown>)[def.discriminator];
      const options = def.options as z.ZodType[];
      const match = options.find((o) => {
        const shape = (o as unknown as { _zod: { def: { shape?: Record<string, z.ZodType> } } })._zod.def.shape;
        const literal = shape?.[def.discriminator as string] as unknown as { _zod: { def: { values?: unknown[] } } } | undefined;
        return literal?._zod.def.values?.includes(wanted);
      });
      if (!match) return node;
      node = match;
    } else {
      return node;
    }
  }
  return node;
}

export function describeIssues(issues: readonly z.core.$ZodIssue[], schema: z.ZodType, data: unknown): SchemaProblem[] {
  const problems: SchemaProblem[] = [];
  for (const issue of issues) {
    const path = issue.path as Path;
    switch (issue.code) {
      case "unrecognized_keys": {
        const expected = expectedKeysAt(schema, data, path);
        for (const key of issue.keys) {
          problems.push({
            path: [...path, key],
            atKey: true,
            message: `unknown key "${key}" ${ownerOf(path)}${expected.length ? `; expected one of: ${expected.join(", ")}` : ""}`,
          });
        }
        break;
      }
      case "invalid_union": {
        const note = (issue as { note?: string }).note;
        const options = (issue as { options?: unknown[] }).options;
        if (note === "No matching discriminator" && options) {
          const value = valueAt(data, path);
          const kindOf = String(path[path.length - 2] ?? "");
          const what = kindOf === "source" ? "source" : OWNERS[String(path[0])] ?? kindOf;
          const owner = ownerOf(path.slice(0, -1));
          problems.push(
            value === undefined
              ? { path: path.slice(0, -1), atKey: true, message: `missing key "type" ${owner}; expected one of: ${options.join(", ")}` }
              : { path, atKey: false, message: `unknown ${what} type ${describeValue(value)} ${owner}; expected one of: ${options.join(", ")}` },
          );
        } else {
          const { name, owner } = field(path);
          problems.push({ path, atKey: false, message: `${name} ${owner} does not match any accepted form` });
        }
        break;
      }
      case "invalid_type": {
        const value = valueAt(data, path);
        const { name, owner } = field(path);
        const parentExists = path.length === 0 || valueAt(data, path.slice(0, -1)) !== undefined;
        if (value === undefined && parentExists) {
          problems.push({ path: path.slice(0, -1), atKey: true, message: `missing required key "${name}" ${owner}` });
        } else {
          const expected = EXPECTED_NAMES[issue.expected] ?? issue.expected;
          problems.push({ path, atKey: false, message: `${name} ${owner} must be ${expected}, not ${describeValue(value)}` });
        }
        break;
      }
      case "invalid_value": {
        const { name, owner } = field(path);
        const values = issue.values.map((v) => String(v)).join(", ");
        problems.push({ path, atKey: false, message: `${name} ${owner} must be one of: ${values}; got ${describeValue(valueAt(data, path))}` });
        break;
      }
      case "invalid_key": {
        const key = path[path.length - 1];
        const owner = OWNERS[String(path[0])] ?? "key";
        const reason = issue.issues[0]?.message ?? "is invalid";
        problems.push({ path, atKey: true, message: `invalid ${owner} name "${String(key)}": ${reason}` });
        break;
      }
      case "too_small":
      case "too_big": {
        const { name, owner } = field(path);
        const limit = Number((issue as { minimum?: unknown; maximum?: unknown }).minimum ?? (issue as { maximum?: unknown }).maximum);
        const what = issue.origin === "array" ? (issue.code === "too_small" ? `must have at least ${limit} entries` : `must have at most ${limit} entries`) : issue.origin === "string" ? (issue.code === "too_small" ? (limit <= 1 ? "must not be empty" : `must be at least ${limit} characters`) : `must be at most ${limit} characters`) : issue.code === "too_small" ? `must be at least ${limit}` : `must be at most ${limit}`;
        problems.push({ path, atKey: false, message: `${name} ${owner} ${issue.message && !/^Too (small|big)/.test(issue.message) ? lowerFirst(issue.message) : what}` });
        break;
      }
      default: {
        const { name, owner } = field(path);
        problems.push({ path, atKey: false, message: `${name} ${owner} ${lowerFirst(issue.message)}` });
      }
    }
  }
  return problems;
}

function lowerFirst(text: string): string {
  return text.replace(/^[A-Z](?=[a-z])/, (c) => c.toLowerCase());
}
