import { promises as fs } from "node:fs";
import { dirname } from "node:path";
import { generateIdentity } from "../../pipeline/age/index.js";
import { LifeboatError } from "../../model/errors.js";
import { EXIT } from "../output.js";
import type { Command } from "../command.js";

export const keygenCommand: Command = {
  name: "keygen",
  summary: "create an age identity file (mode 0600) and print its public recipient",
  usage: "lifeboat keygen --output FILE",
  options: { output: { type: "string", short: "o" } },
  async run(ctx, { values }) {
    const output = values.output as string | undefined;
    if (!output) throw new LifeboatError("USAGE", "keygen needs --output FILE", { kind: "usage" });
    const { identity, recipient } = generateIdentity();
    const text = `# created: ${new Date().toISOString()}\n# public key: ${recipient}\n${identity}\n`;
    await fs.mkdir(dirname(output), { recursive: true });
    await fs.writeFile(output, text, { mode: 0o600, flag: "wx" }).catch((error: NodeJS.ErrnoException) => {
      if (error.code === "EEXIST") throw new LifeboatError("KEYGEN_EXISTS", `${output} already exists; refusing to overwrite a key`, { kind: "usage" });
      throw error;
    });
    if (ctx.output.json) ctx.output.printJson({ file: output, recipient });
    else ctx.output.out(`wrote ${output}\npublic key: ${recipient}`);
    return EXIT.ok;
  },
};
