/**
 * Names users give things (jobs, storages, plans, steps) end up in object keys,
 * file names and logs, so they are restricted to a safe alphabet.
 */
export const NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;

export const NAME_RULE = "lower-case letters, digits, '.', '_' and '-', starting with a letter or digit, at most 64 characters";

export function isValidName(name: string): boolean {
  return NAME_PATTERN.test(name) && !name.includes("..");
}
