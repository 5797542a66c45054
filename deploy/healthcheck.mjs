// Docker HEALTHCHECK for the slim images, which have no curl:
//   node deploy/healthcheck.mjs PORT_VARIABLE PATH
// asks http://127.0.0.1:$PORT_VARIABLE/PATH and exits 0 on a 2xx answer
// within 2 s, 1 otherwise. Plain JavaScript: it runs every few seconds, and
// starting tsx for it would cost more than the check.
const [portVariable, path = '/healthz'] = process.argv.slice(2);
const port = Number(process.env[portVariable ?? ''] ?? '');
if (!portVariable || !Number.isInteger(port) || port <= 0) {
  console.error(`healthcheck: ${portVariable ?? 'PORT_VARIABLE'} must name a variable holding the port (got "${process.env[portVariable ?? ''] ?? ''}")`);
  process.exit(1);
}
try {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(2000) });
  if (!response.ok) console.error(`healthcheck: ${path} answered ${response.status}: ${(await response.text()).slice(0, 200)}`);
  process.exit(response.ok ? 0 : 1);
} catch (error) {
  console.error(`healthcheck: ${path}: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
