/**
 * Report text comes from tools and checks (step output, error messages), so
 * it can hold anything: terminal escape codes, NUL bytes, lone surrogates.
 * Every renderer passes it through here first.
 */

/** Characters XML 1.0 does not allow; tab and line feed are kept. */
const DISALLOWED = /[^\t\n\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

/**
 * Makes control characters visible instead of live: `\r\n` and a lone `\r`
 * become line feeds, other C0 controls their Unicode control pictures
 * (`ESC` → `␛`), and anything else XML cannot hold becomes `�`.
 */
export function visibleText(text: string): string {
  return text.replace(/\r\n?/g, "\n").replace(DISALLOWED, (char) => {
    const code = char.codePointAt(0)!;
    return code < 0x20 ? String.fromCodePoint(0x2400 + code) : "\uFFFD";
  });
}

/** The text on one line: runs of whitespace, line breaks included, become one space. */
export function oneLine(text: string): string {
  return visibleText(text).replace(/\s+/g, " ").trim();
}
