import { configJsonSchema } from "../../config/schema.js";
import { EXIT } from "../output.js";
import type { Command } from "../command.js";

export const schemaCommand: Command = {
  name: "schema",
  summary: "print the JSON Schema of lifeboat.yaml (for editor autocompletion)",
  usage: "lifeboat schema",
  options: {},
  async run(ctx) {
    ctx.output.out(JSON.stringify(configJsonSchema(), null, 2));
    return EXIT.ok;
  },
};
