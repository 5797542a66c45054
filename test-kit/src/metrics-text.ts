/** One sample of a Prometheus metric with exactly these labels, in any order; undefined when there is none. */
export function metricValue(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\} (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const got = Object.fromEntries([...match[2]!.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.keys(got).length === Object.keys(labels).length && Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(match[3]);
  }
  return undefined;
}

/** The sum of a metric's samples that carry at least these labels (any others too): a total over the labels not named. */
export function metricSum(text: string, name: string, labels: Record<string, string>): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\} (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const got = Object.fromEntries([...match[2]!.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) sum += Number(match[3]);
  }
  return sum;
}

/** A hub node's connected sockets of one role (on every namespace, or one), from its /metrics. */
export async function connectedClients(hubUrl: string, node: string, role: string, namespace?: string): Promise<number> {
  const text = await (await fetch(`${hubUrl}/metrics`)).text();
  return metricSum(text, 'clinic_hub_connected_clients', { role, node, ...(namespace ? { namespace } : {}) });
}

/** Client actions a hub node has started and not yet acknowledged, from its /metrics. */
export async function actionsInFlight(hubUrl: string, node: string): Promise<number> {
  const text = await (await fetch(`${hubUrl}/metrics`)).text();
  return metricValue(text, 'clinic_hub_actions_in_flight', { node }) ?? 0;
}
