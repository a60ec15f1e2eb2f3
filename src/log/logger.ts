import { writeSync } from "node:fs";
import { pino, type Logger as PinoLogger, type DestinationStream } from "pino";
import { redactText } from "./redact.js";

/**
 * The root logger: pino, JSON lines on stderr, object first and a constant
 * message (`log.info({ job, backupId, sizeBytes }, "backup stored")`).
 * Every line passes through `redactText`, and secret-looking fields are
 * censored by path, so a secret can only leak by being printed elsewhere.
 */
export type Logger = PinoLogger;
export type LogLevel = "trace" | "debug" | "info" | "warn" | "error" | "fatal" | "silent";

const REDACT_PATHS = [
  "password",
  "secretAccessKey",
  "sessionToken",
  "identity",
  "authorization",
  "headers.authorization",
  "*.password",
  "*.secretAccessKey",
  "*.sessionToken",
  "*.identity",
  "*.authorization",
];

class RedactingDestination {
  constructor(private readonly fd: number) {}
  write(line: string): void {
    const text = redactText(line);
    // Synchronous on purpose: a log line must not be lost when the process exits.
    writeSync(this.fd, text);
  }
}

export function createLogger(options: { level?: LogLevel; destination?: DestinationStream } = {}): Logger {
  return pino(
    {
      level: options.level ?? "info",
      base: undefined,
      redact: { paths: REDACT_PATHS, censor: "[redacted]" },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination ?? (new RedactingDestination(2) as unknown as DestinationStream),
  );
}

/** A logger that drops everything; engines default to it so they can run without a CLI. */
export const silentLogger: Logger = pino({ level: "silent" });
