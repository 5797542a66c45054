import stringWidth from 'string-width';
import type { LocalizedText } from '@clinic-hub/protocol';
import type { CliError } from './cli-error.js';

/** Colour only on a terminal, never with NO_COLOR set (https://no-color.org) or TERM=dumb. */
export function colorEnabled(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.TERM === 'dumb') return false;
  return stream.isTTY === true;
}

export interface Style {
  bold(text: string): string;
  dim(text: string): string;
  red(text: string): string;
  green(text: string): string;
  yellow(text: string): string;
  cyan(text: string): string;
}

const sgr = (open: number, close: number) => (text: string) => `\u001B[${open}m${text}\u001B[${close}m`;
const plain = (text: string) => text;

export function styleFor(color: boolean): Style {
  return color
    ? { bold: sgr(1, 22), dim: sgr(2, 22), red: sgr(31, 39), green: sgr(32, 39), yellow: sgr(33, 39), cyan: sgr(36, 39) }
    : { bold: plain, dim: plain, red: plain, green: plain, yellow: plain, cyan: plain };
}

/** Where a command writes: plain text for people, or one JSON document for scripts. */
export class Output {
  readonly style: Style;
  readonly errStyle: Style;

  constructor(
    readonly json: boolean,
    private readonly stdout: NodeJS.WritableStream & { isTTY?: boolean } = process.stdout,
    private readonly stderr: NodeJS.WritableStream & { isTTY?: boolean } = process.stderr,
    env: NodeJS.ProcessEnv = process.env,
  ) {
    this.style = styleFor(!json && colorEnabled(stdout, env));
    this.errStyle = styleFor(colorEnabled(stderr, env));
  }

  line(text = ''): void {
    this.stdout.write(`${text}\n`);
  }

  data(value: unknown): void {
    this.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  }

  /** A note for people (stderr, so it never mixes into data). */
  note(text: string): void {
    if (!this.json) this.stderr.write(`${text}\n`);
  }

  /** An error: `{ "error": { code, message, detail?, hint? } }` on stderr with --json, else code, message and next step. */
  error(error: CliError): void {
    if (this.json) {
      this.stderr.write(`${JSON.stringify({ error: error.toJSON() })}\n`);
      return;
    }
    const s = this.errStyle;
    const lines = [`${s.red(s.bold('error'))} ${s.bold(error.code)}: ${error.message}`];
    if (error.detail) lines.push(`  ${s.dim('detail:')} ${error.detail}`);
    if (error.hint) lines.push(`  ${s.dim('next:')}   ${error.hint}`);
    this.stderr.write(`${lines.join('\n')}\n`);
  }
}

export const displayWidth = (text: string) => stringWidth(text);

export function padEnd(text: string, width: number): string {
  return text + ' '.repeat(Math.max(0, width - stringWidth(text)));
}

/** Cuts to `width` terminal columns (Japanese characters take two), ending with … when cut. */
export function truncate(text: string, width: number): string {
  if (stringWidth(text) <= width) return text;
  let out = '';
  for (const char of text) {
    if (stringWidth(out + char) > width - 1) break;
    out += char;
  }
  return `${out}…`;
}

/**
 * Wraps text into lines of at most `width` terminal columns, breaking between
 * words (a word wider than a line is broken inside); given lines are kept. At
 * most `maxLines`: the last one then ends with … so it is plain that more was
 * said than shown.
 */
export function wrapText(text: string, width: number, maxLines = Infinity): string[] {
  const lines: string[] = [];
  for (const paragraph of text.split('\n')) {
    let line = '';
    for (const word of paragraph.split(/ +/)) {
      const candidate = line ? `${line} ${word}` : word;
      if (stringWidth(candidate) <= width) {
        line = candidate;
        continue;
      }
      if (line) lines.push(line);
      line = '';
      let rest = word;
      while (stringWidth(rest) > width) {
        let head = '';
        for (const char of rest) {
          if (stringWidth(head + char) > width) break;
          head += char;
        }
        lines.push(head);
        rest = rest.slice(head.length);
      }
      line = rest;
    }
    lines.push(line);
  }
  if (lines.length <= maxLines) return lines;
  const kept = lines.slice(0, maxLines);
  let cut = '';
  for (const char of kept[maxLines - 1]!) {
    if (stringWidth(cut + char) > width - 1) break;
    cut += char;
  }
  kept[maxLines - 1] = `${cut}…`;
  return kept;
}

/**
 * Columns padded to their widest cell (counting terminal columns), two spaces
 * apart; `styleRow` may colour a whole row after padding.
 */
export function table(header: string[], rows: string[][], options: { headerStyle?: (s: string) => string } = {}): string[] {
  const widths = header.map((h, i) => Math.max(stringWidth(h), ...rows.map((r) => stringWidth(r[i] ?? ''))));
  const render = (cells: string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : padEnd(cell, widths[i]!)))
      .join('  ')
      .trimEnd();
  const head = render(header);
  return [options.headerStyle ? options.headerStyle(head) : head, ...rows.map(render)];
}

export const bilingual = (text: LocalizedText) => (text.ja === text.en ? text.ja : `${text.ja} ${text.en}`);

export function ago(at: number, now = Date.now()): string {
  const seconds = Math.max(0, Math.round((now - at) / 1000));
  if (seconds < 60) return `${seconds}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h ${Math.floor((seconds % 3600) / 60)}m ago`;
  return `${Math.floor(seconds / 86400)}d ago`;
}

export function duration(seconds: number): string {
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h ${Math.floor((seconds % 3600) / 60)}m`;
  return `${Math.floor(seconds / 86400)}d ${Math.floor((seconds % 86400) / 3600)}h`;
}

export function bytes(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return '?';
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

export function clockTime(at: number, timezone?: string): string {
  return new Intl.DateTimeFormat('en-GB', { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false, timeZone: timezone }).format(at);
}

export const STATUS_LABEL: Record<string, string> = {
  waiting: 'waiting',
  called: 'called',
  in_consultation: 'in consult',
  done: 'done',
  no_show: 'no-show',
  cancelled: 'cancelled',
};
