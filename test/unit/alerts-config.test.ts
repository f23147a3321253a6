import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../config/load.ts';

const dir = mkdtempSync(join(tmpdir(), 'quotaflow-alerts-config-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function file(text: string): string {
  const path = join(dir, `config-${n++}.yaml`);
  writeFileSync(path, text);
  return path;
}

function problemsOf(path: string | undefined, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    loadConfig(path, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected the configuration to be rejected');
}

const SECRET = 'whsec-0123456789abcdef';

describe('config: alerts', () => {
  it('defaults: no webhook, evaluated every 10 s, 5 attempts of 5 s', () => {
    expect(loadConfig(undefined, {}).config.alerts).toEqual({ interval_ms: 10_000, max_attempts: 5, timeout_ms: 5_000 });
  });

  it('reads the section from a file', () => {
    const path = file(
      `alerts:\n  webhook_url: https://hooks.example/qf\n  webhook_secret: ${SECRET}\n  interval_ms: 2000\n  max_attempts: 3\n`,
    );
    expect(loadConfig(path, {}).config.alerts).toEqual({
      webhook_url: 'https://hooks.example/qf',
      webhook_secret: SECRET,
      interval_ms: 2_000,
      max_attempts: 3,
      timeout_ms: 5_000,
    });
  });

  it('ALERTS_WEBHOOK_URL and ALERTS_WEBHOOK_SECRET override the file; an all-digit secret stays a string', () => {
    const path = file('alerts:\n  webhook_url: https://old.example/\n  webhook_secret: old-secret-0123456789\n');
    const { alerts } = loadConfig(path, {
      ALERTS_WEBHOOK_URL: 'http://127.0.0.1:9000/hook',
      ALERTS_WEBHOOK_SECRET: '12345678901234567890',
    }).config;
    expect(alerts.webhook_url).toBe('http://127.0.0.1:9000/hook');
    expect(alerts.webhook_secret).toBe('12345678901234567890');
  });

  it('a webhook URL without a secret is an error (every request is signed)', () => {
    expect(problemsOf(undefined, { ALERTS_WEBHOOK_URL: 'https://hooks.example/qf' })).toEqual([
      'alerts.webhook_secret: required with alerts.webhook_url (every webhook request is signed); env ALERTS_WEBHOOK_SECRET',
    ]);
  });

  it('a secret without a URL is allowed (nothing is sent)', () => {
    expect(loadConfig(undefined, { ALERTS_WEBHOOK_SECRET: SECRET }).config.alerts.webhook_url).toBeUndefined();
  });

  it('lists every bad value at once', () => {
    const path = file(
      'alerts:\n  webhook_url: ftp://hooks.example/\n  webhook_secret: short\n  interval_ms: 500\n  max_attempts: 0\n  colour: red\n',
    );
    expect(problemsOf(path)).toEqual([
      'alerts.colour: Unexpected property',
      "alerts.webhook_url: Expected string to match '^https?://[^\\s/?#]+'",
      'alerts.webhook_secret: Expected string length greater or equal to 16',
      'alerts.interval_ms: Expected integer to be greater or equal to 1000',
      'alerts.max_attempts: Expected integer to be greater or equal to 1',
    ]);
  });

  it('rejects a URL that matches the pattern but does not parse, once', () => {
    for (const url of ['http://exa mple.com/', 'http://[::1/']) {
      // Set by the environment: the problem names the variable (config/load.ts).
      expect(problemsOf(undefined, { ALERTS_WEBHOOK_URL: url, ALERTS_WEBHOOK_SECRET: SECRET })).toEqual([
        'ALERTS_WEBHOOK_URL (alerts.webhook_url): not a valid URL',
      ]);
    }
    expect(problemsOf(undefined, { ALERTS_WEBHOOK_URL: 'nonsense', ALERTS_WEBHOOK_SECRET: SECRET })).toEqual([
      "ALERTS_WEBHOOK_URL (alerts.webhook_url): Expected string to match '^https?://[^\\s/?#]+'",
    ]);
  });
});
