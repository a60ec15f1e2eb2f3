import { visibleText } from "./text.js";

/**
 * Markup that is already safe to emit. The `markup` template tag escapes
 * every interpolated value that is not one, so report text cannot open a tag
 * or leave an attribute in the HTML pages and the JUnit XML.
 */
export class Markup {
  constructor(readonly text: string) {}

  toString(): string {
    return this.text;
  }
}

export type MarkupValue = string | number | Markup | readonly MarkupValue[] | null | undefined | false;

const ENTITIES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** Escapes text for HTML or XML 1.0 content and quoted attribute values. */
export function escapeText(text: string): string {
  return visibleText(text).replace(/[&<>"']/g, (char) => ENTITIES[char]!);
}

/** Like `escapeText`, and keeps line breaks and tabs, which XML parsers turn into spaces in attributes. */
export function escapeAttribute(text: string): string {
  return escapeText(text).replace(/\n/g, "&#10;").replace(/\t/g, "&#9;");
}

export function markup(strings: TemplateStringsArray, ...values: MarkupValue[]): Markup {
  let text = strings[0]!;
  values.forEach((value, i) => {
    text += render(value) + strings[i + 1]!;
  });
  return new Markup(text);
}

function render(value: MarkupValue): string {
  if (value === null || value === undefined || value === false) return "";
  if (value instanceof Markup) return value.text;
  if (typeof value === "number") return String(value);
  if (typeof value === "string") return escapeText(value);
  return value.map(render).join("");
}
