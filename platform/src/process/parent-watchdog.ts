/**
 * Loaded with `--import` into every Node process a benchmark or a test starts
 * (hub nodes, media-servers, workers, load generators): when its parent dies
 * without cleaning up (kill -9, a test worker killed on a timeout), the process
 * is re-parented and stops itself instead of lingering.
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
