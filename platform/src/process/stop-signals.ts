/** One way of stopping: what is logged (with the signal) and the work, which resolves when the process may exit. */
export interface StopStep {
  message: string;
  run: () => Promise<unknown>;
}

export interface StopSignalOptions {
  logger: { info(fields: { signal: NodeJS.Signals }, message: string): void };
  /**
   * A signal after the first: `ignore` it (the default), `exit` at once
   * with 1, or take another step (e.g. stop now rather than drain) — on
   * every later signal, as an operator presses Ctrl-C again.
   */
  again?: 'ignore' | 'exit' | StopStep;
}

/**
 * How every service process (hub, media-server, AI and notification
 * workers) answers SIGINT and SIGTERM: the first signal takes `first` (a
 * graceful stop), later ones what `again` says. The process exits as soon
 * as a step it took settles: 0 when it resolved, 1 when it rejected.
 */
export function onStopSignals(first: StopStep, options: StopSignalOptions): void {
  const again = options.again ?? 'ignore';
  let stopping = false;
  const take = (step: StopStep, signal: NodeJS.Signals) => {
    options.logger.info({ signal }, step.message);
    step.run().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (!stopping) {
      stopping = true;
      take(first, signal);
    } else if (again === 'exit') {
      process.exit(1);
    } else if (again !== 'ignore') {
      take(again, signal);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}
