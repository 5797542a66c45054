import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { ClinicConfig, type ClinicSettingsRecord } from '@clinic-hub/protocol';
import { CliError } from '../cli-error.js';
import { connectionOptions, examples, handle, jsonOption, type Runtime } from '../command-kit.js';
import { requireClinic, type Connection } from '../connection.js';
import { hubRequest } from '../hub-http.js';
import { ago, table, type Output } from '../output.js';
import { diffSettingsPaths, flattenSettings, parseSettingValue, setSettingsPath, type SettingsChange } from '../settings-paths.js';

/** `PUT /api/clinics/:id/settings` answers with the record and whether anything changed. */
type SavedSettings = ClinicSettingsRecord & { changed: boolean };

const settingsPath = (clinic: string) => `/api/clinics/${encodeURIComponent(clinic)}/settings`;

function printSettings(out: Output, record: ClinicSettingsRecord, checkedAt: number): void {
  const s = out.style;
  const { settings } = record;
  out.line(`${s.bold(record.clinic)}: settings version ${record.version}, changed ${record.updatedAt > 0 ? ago(record.updatedAt, checkedAt) : '-'} by ${record.updatedBy || '-'}`);
  out.line();
  out.line(s.bold('Departments and rooms') + s.dim(' (a closed room is not counted in wait estimates)'));
  for (const line of table(
    ['DEPT', 'PREFIX', 'ONLINE', 'ROOM', 'OPEN'],
    settings.departments.flatMap((d) => d.rooms.map((r, i) => [i === 0 ? d.id : '', i === 0 ? d.prefix : '', i === 0 ? (d.online ? 'yes' : 'no') : '', r.id, r.open ? s.green('open') : s.yellow('closed')])),
    { headerStyle: s.dim },
  ))
    out.line(`  ${line}`);
  out.line();
  out.line(s.bold('Everything else') + s.dim(' (set one with `clinic settings set PATH VALUE`)'));
  const rest = [...flattenSettings(settings)].filter(([path]) => !path.startsWith('departments.'));
  for (const line of table(['SETTING', 'VALUE'], rest, { headerStyle: s.dim })) out.line(`  ${line}`);
}

function printChanges(out: Output, changes: SettingsChange[]): void {
  const s = out.style;
  if (changes.length === 0) {
    out.line('No differences.');
    return;
  }
  const show = (value: unknown) => (value === undefined ? s.dim('(none)') : JSON.stringify(value));
  for (const line of table(['SETTING', 'NOW', 'THEN'], changes.map((c) => [c.path, show(c.before), show(c.after)]), { headerStyle: s.dim })) out.line(`  ${line}`);
}

/** A clinic file, or what `clinic settings --json` printed (a record with `settings`). */
async function readSettingsFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new CliError('USAGE', { message: `Cannot read ${path}.`, detail: (error as NodeJS.ErrnoException).code ?? (error as Error).message, hint: 'give the path of a clinic file, or of what `clinic settings --json` printed' });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new CliError('USAGE', { message: `${path} is not JSON.`, detail: (error as Error).message, hint: 'fix the file; `clinic settings --json > file.json` writes one to start from' });
  }
  const record = parsed as { settings?: unknown };
  return typeof record === 'object' && record !== null && 'settings' in record && typeof record.settings === 'object' ? record.settings : parsed;
}

async function save(c: Connection, clinic: string, settings: unknown, ifVersion: number): Promise<SavedSettings> {
  return hubRequest<SavedSettings>(c, settingsPath(clinic), { method: 'PUT', body: { settings, ifVersion } });
}

function reportSaved(out: Output, before: ClinicSettingsRecord, saved: SavedSettings): void {
  const changes = diffSettingsPaths(before.settings, saved.settings);
  if (out.json) {
    out.data({ clinic: saved.clinic, changed: saved.changed, version: saved.version, previousVersion: before.version, changes });
    return;
  }
  if (!saved.changed) {
    out.line(`Nothing changed: version ${saved.version} already has this.`);
    return;
  }
  out.line(`${out.style.green('Saved')}: version ${before.version} → ${saved.version}; every hub node applies it within a second (audited as settings.update).`);
  printChanges(out, changes);
}

function parseVersion(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const version = Number(text);
  if (!Number.isInteger(version) || version < 1) throw new CliError('USAGE', { message: '--if-version must be a whole number from 1.', hint: '`clinic settings` shows the current version' });
  return version;
}

/**
 * `clinic settings`: the clinic's settings as the hub keeps them
 * (GET|PUT /api/clinics/:id/settings; docs/protocol.md, "Clinic settings").
 */
export function registerSettingsCommands(program: Command, runtime: Runtime): void {
  const settings = program
    .command('settings')
    .summary("the clinic's settings: read, change one, or compare with a file")
    .description(
      "The clinic's settings as every hub node applies them (departments, rooms open or closed, hours, languages, recall and no-show rules, retention, AI, self check-in). " +
        'Changes are validated with the clinic file’s schema, applied on every node within a second and audited (docs/protocol.md, "Clinic settings"). Reading: admin or staff; changing: admin.',
    );
  examples(settings, ['clinic settings', 'clinic settings set departments.internal.rooms.room2.open false', 'clinic settings diff config/clinics/demo.json']);

  const get = connectionOptions(settings.command('get', { isDefault: true }))
    .description('the current settings: version, who changed them last, departments and rooms, every other setting by path')
    .addOption(jsonOption());
  examples(get, ['clinic settings', 'clinic settings --json > demo.json', 'clinic settings --json | jq .settings.departments']);
  handle(get, runtime, async ({ out, connection }) => {
    const c = connection();
    const record = await hubRequest<ClinicSettingsRecord>(c, settingsPath(requireClinic(c)));
    if (out.json) out.data(record);
    else printSettings(out, record, Date.now());
  });

  const set = connectionOptions(settings.command('set'))
    .description(
      'change settings: PATH VALUE pairs (departments and rooms by id: departments.internal.rooms.room2.open false; VALUE is JSON when it parses, else text), ' +
        'or --file with a whole clinic (a clinic file, or what `clinic settings --json` printed). Refused when someone saved meanwhile (SETTINGS_VERSION_CONFLICT): run it again.',
    )
    .argument('[pairs...]', 'PATH VALUE, PATH VALUE, …')
    .option('--file <path>', 'the whole clinic from this JSON file')
    .option('--if-version <n>', 'save only if the settings are still this version (default: the version just read)')
    .addOption(jsonOption());
  examples(set, [
    'clinic settings set noShowAfterRecalls 3',
    'clinic settings set departments.internal.rooms.room2.open false ai.enabled true',
    'clinic settings set spokenCallLanguages \'["en","ja"]\'',
    'clinic settings set --file demo.json --if-version 7',
  ]);
  handle<{ file?: string; ifVersion?: string }>(set, runtime, async ({ out, connection }, options, args) => {
    const pairs = args;
    if (options.file !== undefined && pairs.length > 0) throw new CliError('USAGE', { message: 'Give PATH VALUE pairs or --file, not both.' });
    if (options.file === undefined && (pairs.length === 0 || pairs.length % 2 !== 0)) {
      throw new CliError('USAGE', { message: 'Give PATH VALUE pairs (an even number of words) or --file FILE.', hint: '`clinic settings` lists every PATH; `clinic settings set --help` has examples' });
    }
    const ifVersion = parseVersion(options.ifVersion);
    const c = connection();
    const clinic = requireClinic(c);
    const current = await hubRequest<ClinicSettingsRecord>(c, settingsPath(clinic));
    let next: unknown;
    if (options.file !== undefined) next = await readSettingsFile(options.file);
    else {
      next = current.settings;
      for (let i = 0; i < pairs.length; i += 2) {
        const path = pairs[i]!;
        try {
          next = setSettingsPath(next, path, parseSettingValue(pairs[i + 1]!));
        } catch (error) {
          throw new CliError('USAGE', { message: `Cannot set ${path}: ${(error as Error).message}.`, hint: '`clinic settings` lists every PATH' });
        }
        // The schema drops keys it does not know: a misspelt name would change nothing without a word.
        const parsed = ClinicConfig.safeParse(next);
        const leaves = parsed.success ? [...flattenSettings(parsed.data).keys()] : null;
        if (leaves && !leaves.some((leaf) => leaf === path || leaf.startsWith(`${path}.`))) {
          throw new CliError('USAGE', { message: `No setting ${path}.`, hint: '`clinic settings` lists every PATH' });
        }
      }
    }
    const saved = await save(c, clinic, next, ifVersion ?? current.version);
    reportSaved(out, current, saved);
  });

  const diff = connectionOptions(settings.command('diff'))
    .description('what saving FILE would change, setting by setting (NOW: on the hub, THEN: in the file); nothing is saved')
    .argument('<file>', 'a clinic file, or what `clinic settings --json` printed')
    .addOption(jsonOption());
  examples(diff, ['clinic settings diff config/clinics/demo.json', 'clinic settings diff demo.json --json | jq ".changes[].path"']);
  handle(diff, runtime, async ({ out, connection }, _options, args) => {
    const c = connection();
    const clinic = requireClinic(c);
    const [current, file] = await Promise.all([hubRequest<ClinicSettingsRecord>(c, settingsPath(clinic)), readSettingsFile(args[0]!)]);
    // Compared as the hub would store it: the schema's defaults filled in, so a file that leaves them out differs only where it means to.
    const parsed = ClinicConfig.safeParse(file);
    if (!parsed.success) {
      const detail = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
      throw new CliError('INVALID_PAYLOAD', { message: `${args[0]} is not a valid clinic.`, detail, hint: 'fix the setting named; the hub would refuse this file the same way' });
    }
    const changes = diffSettingsPaths(current.settings, parsed.data);
    if (out.json) out.data({ clinic, version: current.version, file: args[0], changes });
    else {
      out.line(`${out.style.bold(clinic)} version ${current.version} against ${args[0]}:`);
      printChanges(out, changes);
      if (changes.length > 0) out.line(out.style.dim(`Save it with: clinic settings set --file ${args[0]} --if-version ${current.version}`));
    }
  });
}
