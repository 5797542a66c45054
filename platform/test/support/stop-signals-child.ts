import { createInterface } from 'node:readline';
import { onStopSignals, type StopStep } from '../../src/process/index.js';

/**
 * A process that answers stop signals with onStopSignals, for its test.
 * argv[2]: what a later signal does (`ignore`, `exit` or `step`). Each step
 * logs as JSON on stdout and settles when stdin says so: `resolve first`,
 * `reject again` …
 */
const mode = process.argv[2];
const settlers = new Map<string, { resolve: () => void; reject: (error: Error) => void }>();
const step = (name: string): StopStep => ({
  message: name,
  run: () => new Promise<void>((resolve, reject) => settlers.set(name, { resolve, reject })),
});
createInterface({ input: process.stdin }).on('line', (line) => {
  const [outcome, name] = line.split(' ');
  const settler = settlers.get(name ?? '');
  if (outcome === 'resolve') settler?.resolve();
  if (outcome === 'reject') settler?.reject(new Error(`${name} failed`));
});
onStopSignals(step('first'), {
  logger: { info: (fields, message) => process.stdout.write(`${JSON.stringify({ ...fields, msg: message })}\n`) },
  again: mode === 'step' ? step('again') : mode === 'exit' ? 'exit' : 'ignore',
});
process.stdout.write('ready\n');
