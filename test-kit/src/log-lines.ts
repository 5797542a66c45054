/** The JSON (pino) lines of a process's output, parsed; anything else in it (Node's warnings) is passed over. */
export function jsonLogLines(output: string): Record<string, unknown>[] {
  return output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}
