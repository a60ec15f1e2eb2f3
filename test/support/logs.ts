import { Writable } from "node:stream";
import { createLogger, type Logger } from "../../src/log/logger.js";

/** A logger that keeps every line (as the logger writes it), to check what reached the logs. */
export function capturingLogger(): { log: Logger; text: () => string } {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(chunk.toString());
      callback();
    },
  });
  return { log: createLogger({ level: "trace", destination }), text: () => lines.join("") };
}
