import { afterEach, describe, expect, it } from "vitest";
import { forgetSecretsForTests, redactText, redactValue, registerSecret } from "../src/log/redact.js";

describe("redaction", () => {
  afterEach(() => forgetSecretsForTests());

  it("removes registered secret values wherever they appear", () => {
    registerSecret("s3cr3t-value-123");
    expect(redactText("signature for s3cr3t-value-123 failed")).toBe("signature for [redacted] failed");
    expect(redactValue({ a: ["x s3cr3t-value-123"], n: 3 })).toEqual({ a: ["x [redacted]"], n: 3 });
  });

  it("removes every line of a registered multi-line secret (identity files)", () => {
    registerSecret("# created: today\nAGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ\n");
    expect(redactText("key AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ")).toBe("key [redacted]");
  });

  it.each([
    ["a password in a URL", "postgres://app:hunter2@db/orders", "postgres://app:[redacted]@db/orders"],
    ["an Authorization header", '{"authorization":"AWS4-HMAC-SHA256 Credential=AKIA/x"}', '{"authorization":"[redacted]"}'],
    ["a presigned URL", "https://b.s3/k?X-Amz-Credential=AKIA%2F1&X-Amz-Signature=abcdef", "https://b.s3/k?X-Amz-Credential=[redacted]&X-Amz-Signature=[redacted]"],
    ["an age secret key never registered", "AGE-SECRET-KEY-1ABCDEF", "[redacted]"],
  ])("removes %s even when it was never registered", (_label, text, redacted) => expect(redactText(text)).toBe(redacted));

  it("ignores values too short to be secrets", () => {
    registerSecret("abc");
    expect(redactText("abc")).toBe("abc");
  });
});
