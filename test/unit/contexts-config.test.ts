import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../config/load.ts';
import { contentPolicy } from '../../schemas/contexts-config.ts';

const dir = mkdtempSync(join(tmpdir(), 'qf-contexts-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

describe('config contexts', () => {
  it('defaults: topic quotaflow.context.v1, text stored, 256 KiB records, 1,000 per request', () => {
    expect(loadConfig(undefined, {}).config.contexts).toEqual({
      topic: 'quotaflow.context.v1',
      store_content: { default: true, tenants: {} },
      max_record_bytes: 262_144,
      max_records_per_request: 1_000,
    });
  });

  it('a per-tenant content policy over a default', () => {
    const { config } = loadConfig(
      file('policy.yaml', 'contexts:\n  store_content:\n    default: false\n    tenants:\n      acme: true\n      "Cafe\u0301": true\n'),
      {},
    );
    const stores = contentPolicy(config.contexts.store_content);
    expect([stores('acme'), stores('globex'), stores('Caf\u00e9')]).toEqual([true, false, true]);
  });

  it('limits out of range are configuration errors naming the key', () => {
    const bad = file('bad.yaml', 'contexts:\n  max_record_bytes: 2000000\n  max_records_per_request: 0\n  color: blue\n');
    let problems: string[] = [];
    try {
      loadConfig(bad, {});
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      problems = (err as ConfigError).problems;
    }
    expect(problems).toEqual([
      'contexts.color: Unexpected property',
      'contexts.max_record_bytes: Expected integer to be less or equal to 900000',
      'contexts.max_records_per_request: Expected integer to be greater or equal to 1',
    ]);
  });
});
