/**
 * Secrets never reach logs, errors or reports. Two mechanisms:
 * - values registered here (resolved `${env:…}`/`${file:…}` secrets, keys) are
 *   replaced wherever they appear in text;
 * - patterns that are secret whatever their value: `user:pass@` in URLs,
 *   `Authorization` headers, presigned-URL signatures, age secret keys.
 */

const REDACTED = "[redacted]";
const secrets = new Set<string>();

/** Remembers a secret value so that `redactText` removes it. Short values are ignored (too many false hits). */
export function registerSecret(value: string | undefined): void {
  if (!value) return;
  const trimmed = value.trim();
  if (trimmed.length >= 6) secrets.add(trimmed);
  for (const line of trimmed.split(/\r?\n/)) {
    const l = line.trim();
    if (l.length >= 6 && !l.startsWith("#")) secrets.add(l);
  }
}

const PATTERNS: Array<[RegExp, string]> = [
  [/AGE-SECRET-KEY-1[0-9A-Z]+/g, REDACTED],
  [/(\b[a-z][a-z0-9+.-]*:\/\/)([^\s:@/]+):([^\s@/]*)@/gi, `$1$2:${REDACTED}@`],
  [/(authorization["']?\s*[:=]\s*["']?)[^"'\n,}]+/gi, `$1${REDACTED}`],
  [/([?&](?:X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|Signature|AWSAccessKeyId)=)[^&\s"']+/gi, `$1${REDACTED}`],
];

export function redactText(text: string): string {
  let out = text;
  for (const secret of secrets) {
    if (out.includes(secret)) out = out.split(secret).join(REDACTED);
  }
  for (const [pattern, replacement] of PATTERNS) out = out.replace(pattern, replacement);
  return out;
}

/** Deep-copies plain data with every string redacted (for reports and JSON output). */
export function redactValue<T>(value: T): T {
  if (typeof value === "string") return redactText(value) as T;
  if (Array.isArray(value)) return value.map((v) => redactValue(v)) as T;
  if (value && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = redactValue(v);
    return out as T;
  }
  return value;
}

/** For tests only. */
export function forgetSecretsForTests(): void {
  secrets.clear();
}
