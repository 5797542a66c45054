/**
 * Clinic settings (ClinicConfig) by dotted path, for `clinic settings`:
 * objects by key, and lists of things with an `id` (departments, rooms) by
 * that id, so that `departments.internal.rooms.room2.open` names one room's switch.
 * Any other list (spokenCallLanguages) is one value.
 */

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const isObject = (value: unknown): value is Record<string, Json> => typeof value === 'object' && value !== null && !Array.isArray(value);
const isIdList = (value: unknown): value is Record<string, Json>[] => Array.isArray(value) && value.length > 0 && value.every((item) => isObject(item) && typeof item.id === 'string');

/** Every leaf of the settings as path → JSON text (a list of ids is a level: its items by id). */
export function flattenSettings(value: unknown, prefix = ''): Map<string, string> {
  const leaves = new Map<string, string>();
  const walk = (node: unknown, path: string) => {
    if (isIdList(node)) for (const item of node) walkObject(item, `${path}.${String(item.id)}`);
    else if (isObject(node)) walkObject(node, path);
    else leaves.set(path, JSON.stringify(node));
  };
  const walkObject = (node: Record<string, Json>, path: string) => {
    for (const [key, child] of Object.entries(node)) walk(child, path ? `${path}.${key}` : key);
  };
  walk(value, prefix);
  return leaves;
}

export interface SettingsChange {
  path: string;
  /** JSON values; undefined when the path is only on one side (added or removed). */
  before?: unknown;
  after?: unknown;
}

/** What differs between two settings, leaf by leaf, sorted by path. */
export function diffSettingsPaths(before: unknown, after: unknown): SettingsChange[] {
  const a = flattenSettings(before);
  const b = flattenSettings(after);
  const paths = [...new Set([...a.keys(), ...b.keys()])].sort();
  return paths
    .filter((path) => a.get(path) !== b.get(path))
    .map((path) => ({
      path,
      ...(a.has(path) ? { before: JSON.parse(a.get(path)!) as unknown } : {}),
      ...(b.has(path) ? { after: JSON.parse(b.get(path)!) as unknown } : {}),
    }));
}

/**
 * A copy of `settings` with the value at `path` replaced. Throws an Error
 * whose message says what is wrong (no such department, not a setting).
 * A new key under an existing object is allowed (an optional setting not set yet).
 */
export function setSettingsPath<T>(settings: T, path: string, value: unknown): T {
  const parts = path.split('.').filter(Boolean);
  if (parts.length === 0) throw new Error('the path is empty');
  const copy = structuredClone(settings) as unknown;
  let node: unknown = copy;
  for (const [index, part] of parts.entries()) {
    const last = index === parts.length - 1;
    const here = parts.slice(0, index + 1).join('.');
    if (isIdList(node)) {
      const item = node.find((entry) => entry.id === part);
      if (!item) throw new Error(`no "${part}" in ${parts.slice(0, index).join('.')} (it has ${node.map((entry) => String(entry.id)).join(', ')})`);
      if (last) throw new Error(`${here} is a whole ${parts[index - 1] ?? 'item'} entry: set one of its fields, or send the whole clinic with --file`);
      node = item;
      continue;
    }
    if (!isObject(node)) throw new Error(`${parts.slice(0, index).join('.')} is a single value, not a group of settings`);
    if (last) {
      node[part] = value as Json;
      break;
    }
    if (!(part in node)) throw new Error(`no setting "${here}"`);
    node = node[part];
  }
  return copy as T;
}

/** A value given on the command line: JSON when it parses (true, 3, ["ja"], {"…"}), else the text itself. */
export function parseSettingValue(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}
