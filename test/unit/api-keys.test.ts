import { describe, expect, it } from 'vitest';
import { callerMatcher, keyMatcher, mayRead } from '../../ingest/http/api-keys.ts';

describe('callerMatcher', () => {
  const match = callerMatcher([
    { key: 'ingest-key-0123456789', tenant: 'Jose\u0301' }, // an ingest key: no role, reads its tenant
    { key: 'read-key-0123456789ab', tenant: 'acme', role: 'read' },
    { key: 'admin-key-0123456789a', role: 'admin' },
  ]);

  it('maps a key to its caller; tenants come back NFC-normalised; unknown keys match nothing', () => {
    expect(match('ingest-key-0123456789')).toEqual({ role: 'read', tenant: 'Jos\u00e9' });
    expect(match('read-key-0123456789ab')).toEqual({ role: 'read', tenant: 'acme' });
    expect(match('admin-key-0123456789a')).toEqual({ role: 'admin' });
    expect(match('read-key-0123456789a')).toBeUndefined(); // a prefix is not the key
    expect(match('')).toBeUndefined();
  });

  it('the first of two equal keys wins, as keyMatcher', () => {
    const twice = [
      { key: 'same-key-0123456789ab', tenant: 'first' },
      { key: 'same-key-0123456789ab', tenant: 'second' },
    ];
    expect(callerMatcher(twice)('same-key-0123456789ab')).toEqual({ role: 'read', tenant: 'first' });
    expect(keyMatcher(twice)('same-key-0123456789ab')).toBe('first');
  });

  it('refuses a read key without a tenant', () => {
    expect(() => callerMatcher([{ key: 'read-key-0123456789ab', role: 'read' }])).toThrow('read API key #0: a read key needs its tenant');
  });
});

describe('mayRead', () => {
  it('an admin reads any tenant, a reader only its own', () => {
    expect(mayRead({ role: 'admin' }, 'acme')).toBe(true);
    expect(mayRead({ role: 'read', tenant: 'acme' }, 'acme')).toBe(true);
    expect(mayRead({ role: 'read', tenant: 'acme' }, 'globex')).toBe(false);
  });
});
