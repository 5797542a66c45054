import { createHash } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { Option, type Command } from 'commander';
import type { RecordingList, RecordingMeta } from '@clinic-hub/protocol';
import { CliError, hubError } from '../cli-error.js';
import { connectionOptions, examples, handle, jsonOption, type Runtime } from '../command-kit.js';
import { requireClinic, unreachableHint, type Connection } from '../connection.js';
import { hubRequest } from '../hub-http.js';
import { ago, bytes, colorEnabled, duration, table, type Output } from '../output.js';

/** A download that receives nothing for this long is given up. */
const IDLE_TIMEOUT_MS = 30_000;

const recordingsPath = (clinic: string) => `/api/clinics/${encodeURIComponent(clinic)}/recordings`;

function printRecordings(out: Output, list: RecordingList): void {
  const s = out.style;
  out.line(`${s.bold(list.clinic)}: ${list.recordings.length} recording${list.recordings.length === 1 ? '' : 's'}`);
  if (list.recordings.length === 0) {
    out.line(s.dim('None kept. Recordings appear here once a consultation has been recorded (with everyone’s consent), until the retention policy purges them.'));
    return;
  }
  const now = Date.now();
  const statusColour = (status: RecordingMeta['status']) => (status === 'final' ? s.green(status) : status === 'corrupt' ? s.red(status) : s.yellow(status));
  for (const line of table(
    ['RECORDING', 'CONSULT', 'STATUS', 'STARTED', 'LENGTH', 'PARTICIPANTS', 'FILES', 'SIZE', 'PURGE'],
    list.recordings.map((r) => [
      r.id,
      r.consult,
      statusColour(r.status),
      ago(r.startedAt, now),
      r.stoppedAt ? duration(Math.round((r.stoppedAt - r.startedAt) / 1000)) : s.yellow('recording'),
      r.participants.map((p) => p.part).join(', '),
      String(r.files.length),
      bytes(r.files.reduce((sum, f) => sum + f.plainBytes, 0)),
      r.purgeAt ? (r.purgeAt <= now ? 'due' : `in ${duration(Math.round((r.purgeAt - now) / 1000))}`) : '-',
    ]),
    { headerStyle: s.dim },
  ))
    out.line(line);
  out.line(s.dim('Export a file: clinic recordings export ID --participant P --out FILE (`clinic recordings show ID` lists the participants).'));
}

function printRecording(out: Output, meta: RecordingMeta): void {
  const s = out.style;
  out.line(`${s.bold(meta.id)} · consult ${meta.consult} · ${meta.status}${meta.stopReason ? ` (${meta.stopReason})` : ''}`);
  out.line(`  started ${new Date(meta.startedAt).toISOString()}${meta.stoppedAt ? `, stopped ${new Date(meta.stoppedAt).toISOString()}` : ''}`);
  if (meta.purgeAt) out.line(`  purged by retention policy at ${new Date(meta.purgeAt).toISOString()}`);
  out.line(`  consent: ${meta.consent.map((c) => `${c.type.replace('consent-', '')} ${c.fields.participant ?? '?'}`).join('; ') || 'none recorded'}`);
  out.line();
  for (const line of table(
    ['PARTICIPANT', 'PART', 'KIND', 'SEGMENT', 'LENGTH', 'SIZE', 'SHA-256 (WEBM)'],
    meta.files.map((f) => [f.participant, f.part, f.kind, String(f.segment), duration(Math.round((f.stoppedAt - f.startedAt) / 1000)), bytes(f.plainBytes), f.plainSha256.slice(0, 16)]),
    { headerStyle: s.dim },
  ))
    out.line(`  ${line}`);
}

/** Streams one file to `out` (via `out.part`), checking size and SHA-256 against what the hub announced. */
async function download(
  connection: Connection,
  path: string,
  outPath: string,
  progress: (received: number, total: number) => void,
): Promise<{ bytes: number; sha256: string }> {
  const controller = new AbortController();
  let idle = setTimeout(() => controller.abort(), IDLE_TIMEOUT_MS);
  const touch = () => {
    clearTimeout(idle);
    idle = setTimeout(() => controller.abort(), IDLE_TIMEOUT_MS);
  };
  let response: Response;
  try {
    response = await fetch(`${connection.url}${path}`, { headers: { authorization: `Bearer ${connection.token}` }, signal: controller.signal });
  } catch (error) {
    clearTimeout(idle);
    throw new CliError('HUB_UNREACHABLE', { message: `Cannot reach the hub at ${connection.url}.`, detail: (error as Error).message, hint: unreachableHint(connection) });
  }
  if (!response.ok) {
    clearTimeout(idle);
    const body = (await response.json().catch(() => ({}))) as { error?: { code?: unknown } };
    if (body.error) throw hubError(body.error);
    throw new CliError('INTERNAL', { message: `${path} answered HTTP ${response.status}.` });
  }
  const total = Number(response.headers.get('x-recording-bytes') ?? 0);
  const expected = response.headers.get('x-recording-sha256');
  const partPath = `${outPath}.part`;
  const file = createWriteStream(partPath, { mode: 0o600 });
  const hash = createHash('sha256');
  let received = 0;
  try {
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      touch();
      hash.update(chunk);
      received += chunk.length;
      if (!file.write(chunk)) await new Promise<void>((resolve) => file.once('drain', () => resolve()));
      progress(received, total);
    }
    await new Promise<void>((resolve, reject) => file.end((error?: Error | null) => (error ? reject(error) : resolve())));
  } catch (error) {
    file.destroy();
    await rm(partPath, { force: true });
    throw new CliError('HUB_UNREACHABLE', {
      message: 'The download broke off before the end; nothing was written.',
      detail: controller.signal.aborted ? `no data for ${IDLE_TIMEOUT_MS / 1000} s` : (error as Error).message,
      hint: 'run the command again',
    });
  } finally {
    clearTimeout(idle);
  }
  const sha256 = hash.digest('hex');
  if ((total > 0 && received !== total) || (expected && sha256 !== expected)) {
    await rm(partPath, { force: true });
    throw new CliError('RECORDING_CORRUPT', { detail: `received ${received} of ${total} bytes, SHA-256 ${sha256.slice(0, 16)}… (expected ${expected?.slice(0, 16)}…)`, hint: 'run the command again' });
  }
  await rename(partPath, outPath);
  return { bytes: received, sha256 };
}

export function registerRecordingsCommands(program: Command, runtime: Runtime): void {
  const recordings = program
    .command('recordings')
    .summary('consultation recordings: list, show, export (admins and doctors)')
    .description(
      'consultation recordings kept under the retention policy: ids, status, length, participants’ roles and sizes (never names); ' +
        'export decrypts one participant’s file to a local WebM. Every list and export is written to the clinic’s audit stream.',
    );
  examples(recordings, [
    'clinic recordings',
    'clinic recordings --json | jq ".recordings[] | {id, status, files: (.files | length)}"',
    'clinic recordings show 1f6e…',
    'clinic recordings export 1f6e… --participant patient:zpjN1IhahuDK --out visit.webm',
  ]);

  const list = connectionOptions(recordings.command('list', { isDefault: true }))
    .summary('recordings, newest first (the default)')
    .description('recordings of the clinic, newest first, with status (recording, stopped, final, corrupt), length, roles, files, size and when the retention policy purges them')
    .addOption(new Option('--consult <id>', 'only this consultation’s recordings'))
    .addOption(new Option('--count <n>', 'how many (1–500)').default('50'))
    .addOption(jsonOption());
  examples(list, ['clinic recordings list --count 10', 'clinic recordings list --consult c0nsult-01 --json']);
  handle<{ consult?: string; count: string }>(list, runtime, async ({ out, connection }, options) => {
    const c = connection();
    const clinic = requireClinic(c);
    const query = new URLSearchParams({ count: options.count, ...(options.consult ? { consult: options.consult } : {}) });
    const result = await hubRequest<RecordingList>(c, `${recordingsPath(clinic)}?${query}`);
    if (out.json) out.data(result);
    else printRecordings(out, result);
  });

  const show = connectionOptions(recordings.command('show'))
    .summary('one recording: participants, files, checksums, consent')
    .argument('<id>', 'recording id (from `clinic recordings`)')
    .addOption(jsonOption());
  examples(show, ['clinic recordings show 1f6e…', 'clinic recordings show 1f6e… --json | jq ".consent"']);
  handle(show, runtime, async ({ out, connection }, _options, [id]) => {
    const c = connection();
    const meta = await hubRequest<RecordingMeta>(c, `${recordingsPath(requireClinic(c))}/${encodeURIComponent(id!)}`);
    if (out.json) out.data(meta);
    else printRecording(out, meta);
  });

  const exportCommand = connectionOptions(recordings.command('export'))
    .summary('decrypt one participant’s file to a local WebM')
    .description(
      'downloads one participant’s file, decrypted by the hub, to --out (written as FILE.part and renamed once its size and SHA-256 match). ' +
        'Camera + microphone by default; --kind screen for a screen share, --segment N for later segments of a long recording.',
    )
    .argument('<id>', 'recording id')
    .requiredOption('--participant <id>', 'participant id (from `clinic recordings show ID`)')
    .requiredOption('--out <file>', 'where to write the WebM')
    .addOption(new Option('--kind <kind>', 'av (camera + microphone) or screen').choices(['av', 'screen']))
    .addOption(new Option('--segment <n>', 'segment number (0 is the first)'))
    .addOption(new Option('--force', 'overwrite --out if it exists'))
    .addOption(jsonOption());
  examples(exportCommand, ['clinic recordings export 1f6e… --participant patient:zpjN1IhahuDK --out visit.webm', 'clinic recordings export 1f6e… --participant doctor:demo:local --kind screen --out screen.webm --json']);
  handle<{ participant: string; out: string; kind?: string; segment?: string; force?: boolean }>(exportCommand, runtime, async ({ out, connection }, options, [id]) => {
    if (existsSync(options.out) && !options.force) {
      throw new CliError('USAGE', { message: `${options.out} already exists.`, hint: 'choose another --out, or add --force to overwrite it' });
    }
    const c = connection();
    const query = new URLSearchParams({ ...(options.kind ? { kind: options.kind } : {}), ...(options.segment ? { segment: options.segment } : {}) });
    const path = `${recordingsPath(requireClinic(c))}/${encodeURIComponent(id!)}/files/${encodeURIComponent(options.participant)}${query.size > 0 ? `?${query}` : ''}`;
    // Progress only for people at a terminal: a line rewritten in place on stderr.
    const live = !out.json && colorEnabled(process.stderr, runtime.env);
    let shown = -1;
    const started = Date.now();
    const result = await download(c, path, options.out, (received, total) => {
      if (!live || total === 0) return;
      const percent = Math.floor((received / total) * 100);
      if (percent === shown) return;
      shown = percent;
      process.stderr.write(`\r${options.out}: ${percent}% of ${bytes(total)}`);
    });
    if (live) process.stderr.write('\n');
    if (out.json) out.data({ recording: id, participant: options.participant, out: options.out, bytes: result.bytes, sha256: result.sha256 });
    else out.line(`${out.style.green('✓')} ${options.out}: ${bytes(result.bytes)} in ${((Date.now() - started) / 1000).toFixed(1)} s, SHA-256 ${result.sha256.slice(0, 16)}… (matches the recording)`);
  });
}
