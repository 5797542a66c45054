/** Every Redis key of webhooks (one hash slot per clinic). */
export const webhookKeys = (clinic: string) => ({
  /** Hash: endpoint id → stored endpoint JSON (with its secrets). */
  endpoints: `ch:{${clinic}}:webhooks`,
  /** Stream of delivery attempts (WebhookDelivery JSON), capped. */
  deliveries: `ch:{${clinic}}:webhook-deliveries`,
});
