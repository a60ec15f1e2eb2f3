/**
 * Config problems as users read them, actionlint style:
 *
 *   lifeboat.yaml:12:5: unknown key "retension" in job "orders-db"; expected one of: … [schema]
 *      |
 *   12 |     retension: 7
 *      |     ^~~~~~~~~
 *
 * All problems of a file are collected, sorted by position and shown at once.
 */
export interface Diagnostic {
  /** The file as the user named it (relative paths stay relative). */
  file: string;
  /** 1-based; 0 when the problem has no position (e.g. the file is missing). */
  line: number;
  col: number;
  /** Length of the offending text on that line, for the underline (at least 1). */
  length: number;
  message: string;
  /** Which check found it: schema, syntax, reference, secret, security. */
  rule: "schema" | "syntax" | "reference" | "secret" | "security" | "file";
  severity: "error" | "warning";
}

export function sortDiagnostics(diagnostics: Diagnostic[]): Diagnostic[] {
  return [...diagnostics].sort(
    (a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.col - b.col || a.message.localeCompare(b.message),
  );
}

/** Renders diagnostics with the offending source line under each one. */
export function formatDiagnostics(diagnostics: Diagnostic[], sources: ReadonlyMap<string, string>): string {
  const out: string[] = [];
  for (const d of sortDiagnostics(diagnostics)) {
    const where = d.line > 0 ? `${d.file}:${d.line}:${d.col}` : d.file;
    const level = d.severity === "warning" ? "warning: " : "";
    out.push(`${where}: ${level}${d.message} [${d.rule}]`);
    const text = sources.get(d.file);
    const line = d.line > 0 && text !== undefined ? text.split(/\r?\n/)[d.line - 1] : undefined;
    if (line !== undefined) {
      const gutter = " ".repeat(String(d.line).length);
      const shown = line.length > 200 ? `${line.slice(0, 200)}…` : line;
      const width = Math.max(1, Math.min(d.length, Math.max(1, shown.length - d.col + 1)));
      out.push(`${gutter} |`);
      out.push(`${d.line} | ${shown}`);
      out.push(`${gutter} | ${" ".repeat(Math.max(0, d.col - 1))}^${"~".repeat(width - 1)}`);
    }
  }
  return out.join("\n");
}
