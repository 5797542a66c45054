/** Everything a benchmark started, stopped in reverse order on completion, error or Ctrl-C. */
export class Resources {
  private readonly stack: { name: string; stop: () => Promise<void> }[] = [];

  /** Registers something to stop; the returned function stops it now (and only once). */
  add(name: string, stop: () => Promise<void>): () => Promise<void> {
    const entry = { name, stop };
    this.stack.push(entry);
    return async () => {
      const i = this.stack.indexOf(entry);
      if (i < 0) return;
      this.stack.splice(i, 1);
      await stop();
    };
  }

  async stopAll(log: (line: string) => void): Promise<void> {
    while (this.stack.length > 0) {
      const entry = this.stack.pop()!;
      try {
        await entry.stop();
      } catch (error) {
        log(`  could not stop ${entry.name}: ${(error as Error).message}`);
      }
    }
  }
}
