import { readFileSync } from "node:fs";

/** Lifeboat's own version, from package.json (recorded in every manifest). */
export const LIFEBOAT_VERSION: string = (() => {
  try {
    const url = new URL("../package.json", import.meta.url);
    return (JSON.parse(readFileSync(url, "utf8")) as { version: string }).version;
  } catch {
    return "unknown";
  }
})();
