import type { Command } from 'commander';
import type { WebhookDelivery, WebhookEndpoint } from '@clinic-hub/protocol';
import { connectionOptions, examples, handle, jsonOption, type Runtime } from '../command-kit.js';
import { requireClinic } from '../connection.js';
import { hubRequest } from '../hub-http.js';
import { ago, table } from '../output.js';

/** `clinic webhooks`: the clinic's webhook endpoints and their latest deliveries (GET /api/clinics/:id/webhooks[/deliveries]; admin token). */
export function registerWebhooksCommand(program: Command, runtime: Runtime): void {
  const command = connectionOptions(program.command('webhooks'))
    .summary("the clinic's webhook endpoints and their latest deliveries, with outcomes")
    .description(
      "The clinic's webhook endpoints (url, events, whether they get patient data; never their secrets) and the latest delivery attempts, " +
        'newest first: event, endpoint, attempt, outcome (delivered, retrying, failed), HTTP status or why there was none (docs/webhooks.md). Admin token.',
    )
    .option('--count <n>', 'how many delivery attempts (1–500)', '20')
    .addOption(jsonOption());
  examples(command, ['clinic webhooks', 'clinic webhooks --json | jq \'.deliveries[] | select(.status == "failed")\'']);
  handle<{ count?: string }>(command, runtime, async ({ out, connection }, options) => {
    const c = connection();
    const clinic = requireClinic(c);
    const base = `/api/clinics/${encodeURIComponent(clinic)}/webhooks`;
    const count = options.count ?? '20';
    const [{ endpoints }, { deliveries }] = await Promise.all([
      hubRequest<{ endpoints: WebhookEndpoint[] }>(c, base),
      hubRequest<{ deliveries: WebhookDelivery[] }>(c, `${base}/deliveries?count=${encodeURIComponent(count)}`),
    ]);
    const checkedAt = Date.now();
    if (out.json) {
      out.data({ clinic, checkedAt, endpoints, deliveries });
      return;
    }
    const s = out.style;
    out.line(s.bold(`${clinic}: ${endpoints.length} webhook endpoint${endpoints.length === 1 ? '' : 's'}`));
    if (endpoints.length === 0) out.line(s.dim('  none — add one with POST /api/clinics/:id/webhooks (docs/webhooks.md)'));
    for (const line of table(['ID', 'URL', 'EVENTS', 'PATIENT DATA'], endpoints.map((e) => [e.id, e.url, e.events.join(','), e.includePatientData ? 'yes' : 'no']), { headerStyle: s.dim })) out.line(`  ${line}`);
    out.line();
    out.line(s.bold('Latest deliveries'));
    const outcome = (d: WebhookDelivery) => (d.status === 'delivered' ? s.green(d.status) : d.status === 'failed' ? s.red(d.status) : s.yellow(d.status));
    for (const line of table(
      ['WHEN', 'EVENT', 'ID', 'ENDPOINT', 'TRY', 'OUTCOME', 'HTTP', 'MS'],
      deliveries.map((d) => [ago(d.at, checkedAt), d.type, d.eventId, d.endpoint, String(d.attempt), outcome(d), d.httpStatus === null ? (d.error ?? '—') : String(d.httpStatus), String(d.durationMs)]),
      { headerStyle: s.dim },
    ))
      out.line(`  ${line}`);
  });
}
