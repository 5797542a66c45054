/**
 * Loaded with `--import` into every process the benchmark starts (hub nodes,
 * display workers): when the benchmark itself dies without cleaning up (kill -9),
 * the process is re-parented and stops itself instead of lingering.
 */
const parent = process.ppid;
const timer = setInterval(() => {
  if (process.ppid === parent) return;
  clearInterval(timer);
  process.kill(process.pid, 'SIGTERM');
  setTimeout(() => process.exit(1), 5000).unref();
}, 1000);
timer.unref();

export {};
