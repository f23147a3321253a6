/**
 * Config section `alerts` (issue 4): how often quota alerts are evaluated and where they are sent
 * (processors/quota-alerts.ts, processors/webhook.ts). Env: ALERTS_WEBHOOK_URL, ALERTS_WEBHOOK_SECRET.
 *
 * A webhook URL needs a secret: every request is signed (docs/alerts.md), and an unsigned alert
 * endpoint would accept forged alerts, so `webhook_url` without `webhook_secret` is a config error
 * rather than a warning. A secret without a URL is harmless and allowed.
 */
import { type Static, Type } from '@sinclair/typebox';

export const AlertsConfigSchema = Type.Object(
  {
    webhook_url: Type.Optional(
      Type.String({ pattern: '^https?://[^\\s/?#]+', maxLength: 2048, description: 'http(s) URL the alerts are POSTed to.' }),
    ),
    webhook_secret: Type.Optional(
      Type.String({ minLength: 16, maxLength: 1024, description: 'HMAC-SHA256 key of the X-Quotaflow-Signature header.' }),
    ),
    /** How often every quota is measured and its alerts evaluated, ms. */
    interval_ms: Type.Integer({ minimum: 1_000, maximum: 3_600_000, default: 10_000 }),
    /** Attempts per webhook delivery, the first one included. */
    max_attempts: Type.Integer({ minimum: 1, maximum: 20, default: 5 }),
    /** Limit of one webhook attempt, ms. */
    timeout_ms: Type.Integer({ minimum: 100, maximum: 120_000, default: 5_000 }),
  },
  { additionalProperties: false, default: {} },
);
export type AlertsConfig = Static<typeof AlertsConfigSchema>;

/**
 * What the schema cannot say about `alerts`, as `alerts.<key>: reason` lines: the URL must parse
 * (WHATWG URL) and a URL needs a secret. Reads only values whose type it checks itself.
 */
export function checkAlertsConfig(alerts: unknown): string[] {
  if (typeof alerts !== 'object' || alerts === null) return [];
  const { webhook_url: url, webhook_secret: secret } = alerts as Record<string, unknown>;
  if (typeof url !== 'string') return [];
  const problems: string[] = [];
  // Not http(s) at all: the schema pattern reports it already.
  if (/^https?:\/\//.test(url) && !URL.canParse(url)) problems.push('alerts.webhook_url: not a valid URL');
  if (secret === undefined || secret === '') {
    problems.push('alerts.webhook_secret: required with alerts.webhook_url (every webhook request is signed); env ALERTS_WEBHOOK_SECRET');
  }
  return problems;
}
