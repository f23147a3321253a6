import { describe, expect, it } from 'vitest';
import { sourceGranularity, type UsageSeriesRequest, usageSeries, zoneOffsets } from '../../storage/queries/usage-series.ts';
import { type Granularity, SUMS, totalsByModel } from '../../storage/queries/usage-summary.ts';

const NOW = Date.UTC(2026, 10, 29, 12);
const utc = (iso: string) => Date.parse(iso);

// [label, request, table read]
const TABLES: Array<[string, Omit<Parameters<typeof sourceGranularity>[0], 'nowMs'>, Granularity]> = [
  ['minute buckets always read minutes', { bucket: 'minute', timeZone: 'UTC' }, 'minute'],
  ['totals, open range: days', { timeZone: 'UTC' }, 'day'],
  ['totals, from at a whole hour: hours', { fromMs: utc('2026-11-29T10:00:00Z'), timeZone: 'UTC' }, 'hour'],
  ['totals, from at 10:30: minutes (an hour row would straddle it)', { fromMs: utc('2026-11-29T10:30:00Z'), timeZone: 'UTC' }, 'minute'],
  ['totals, to at 10:00:30: minutes', { toMs: utc('2026-11-29T10:00:30Z'), timeZone: 'UTC' }, 'minute'],
  [
    'UTC days between UTC midnights: days',
    { bucket: 'day', fromMs: utc('2026-11-01T00:00:00Z'), toMs: utc('2026-12-01T00:00:00Z'), timeZone: 'UTC' },
    'day',
  ],
  ['UTC days from 10:00: hours', { bucket: 'day', fromMs: utc('2026-11-01T10:00:00Z'), timeZone: 'UTC' }, 'hour'],
  [
    'New York days (-05:00/-04:00): hours, never UTC days',
    { bucket: 'day', fromMs: utc('2026-03-01T05:00:00Z'), toMs: utc('2026-03-15T04:00:00Z'), timeZone: 'America/New_York' },
    'hour',
  ],
  ['London days (00:00/+01:00): hours', { bucket: 'day', fromMs: utc('2026-01-05T00:00:00Z'), timeZone: 'Europe/London' }, 'hour'],
  ['hour buckets in UTC: hours', { bucket: 'hour', timeZone: 'UTC' }, 'hour'],
  ['hour buckets in Berlin: hours', { bucket: 'hour', timeZone: 'Europe/Berlin' }, 'hour'],
  ['hour buckets in Kolkata (+05:30): minutes', { bucket: 'hour', timeZone: 'Asia/Kolkata' }, 'minute'],
  ['day buckets in Kathmandu (+05:45): minutes', { bucket: 'day', timeZone: 'Asia/Kathmandu' }, 'minute'],
  ['hour buckets on Lord Howe (+10:30/+11:00): minutes', { bucket: 'hour', timeZone: 'Australia/Lord_Howe' }, 'minute'],
  [
    'Caracas hours in 2010 (-04:30): minutes',
    { bucket: 'hour', fromMs: utc('2010-01-01T00:00:00Z'), toMs: utc('2010-02-01T00:00:00Z'), timeZone: 'America/Caracas' },
    'minute',
  ],
  [
    'Caracas hours in 2020 (-04:00): hours',
    { bucket: 'hour', fromMs: utc('2020-01-01T00:00:00Z'), toMs: utc('2020-02-01T00:00:00Z'), timeZone: 'America/Caracas' },
    'hour',
  ],
];

const base: UsageSeriesRequest = { tenant: 'acme', groupBy: [], timeZone: 'UTC', limit: 100, nowMs: NOW };

describe('sourceGranularity', () => {
  it.each(TABLES)('%s', (_label, r, table) => {
    expect(sourceGranularity({ ...r, nowMs: NOW })).toBe(table);
  });

  it('zoneOffsets: New York across the 2026 DST start has -300 and -240 minutes; an unknown zone throws', () => {
    expect(zoneOffsets('America/New_York', utc('2026-03-01T00:00:00Z'), utc('2026-03-31T00:00:00Z'))).toEqual(new Set([-300, -240]));
    expect(zoneOffsets('UTC', utc('2001-01-01T00:00:00Z'), utc('2026-01-01T00:00:00Z'))).toEqual(new Set([0]));
    expect(() => zoneOffsets('Mars/Olympus', 0, 1)).toThrow('unknown time zone: "Mars/Olympus"');
  });
});

describe('usageSeries', () => {
  it('without window and with group_by provider,model it is totalsByModel plus a limit (the first version of /v1/usage)', () => {
    const f = { tenant: 'acme', fromMs: utc('2026-11-29T10:30:00Z'), toMs: utc('2026-11-29T11:00:00Z') };
    const built = usageSeries({ ...base, ...f, groupBy: ['provider', 'model'] });
    expect(built.granularity).toBe('minute');
    expect(built.query).toBe(`${totalsByModel(f).query} LIMIT {limit:UInt32}`);
    expect(built.query_params).toEqual({ ...totalsByModel(f).query_params, limit: 101 });
  });

  it('local days in New York: toStartOfDay in the zone over usage_hour, the zone bound as a parameter', () => {
    const built = usageSeries({
      ...base,
      bucket: 'day',
      groupBy: ['user_id'],
      timeZone: 'America/New_York',
      fromMs: utc('2026-03-07T05:00:00Z'),
      toMs: utc('2026-03-10T04:00:00Z'),
    });
    expect(built.granularity).toBe('hour');
    expect(built.query).toBe(
      `SELECT toUnixTimestamp(toStartOfDay(window_start, {time_zone:String})) AS bucket_unix_s, user_id, ${SUMS} FROM usage_hour ` +
        'WHERE tenant = {tenant:String} AND window_start >= fromUnixTimestamp64Milli({from_ms:Int64}) AND window_start < fromUnixTimestamp64Milli({to_ms:Int64})\n' +
        'GROUP BY bucket_unix_s, user_id ORDER BY bucket_unix_s, sum(usage_hour.cost_usd) DESC, input_tokens + output_tokens DESC, user_id LIMIT {limit:UInt32}',
    );
    expect(built.query_params).toEqual({
      tenant: 'acme',
      from_ms: utc('2026-03-07T05:00:00Z'),
      to_ms: utc('2026-03-10T04:00:00Z'),
      time_zone: 'America/New_York',
      limit: 101,
    });
  });

  it('minute buckets need no zone; no dimension and no bucket is one total row (GROUP BY tuple())', () => {
    const minutes = usageSeries({ ...base, bucket: 'minute', groupBy: ['status'] });
    expect(minutes.query).toContain('SELECT toUnixTimestamp(toStartOfMinute(window_start)) AS bucket_unix_s, status, ');
    expect(minutes.query_params).not.toHaveProperty('time_zone');
    const total = usageSeries(base);
    expect(total.query).toBe(
      `SELECT ${SUMS} FROM usage_day WHERE tenant = {tenant:String}\nGROUP BY tuple() ORDER BY sum(usage_day.cost_usd) DESC, input_tokens + output_tokens DESC LIMIT {limit:UInt32}`,
    );
  });

  it('rejects a bad limit, a repeated or unknown dimension; a hostile tenant only appears in the parameters', () => {
    expect(() => usageSeries({ ...base, limit: 0 })).toThrow('limit must be a whole number >= 1, got 0');
    expect(() => usageSeries({ ...base, groupBy: ['model', 'model'] })).toThrow('group_by lists a dimension twice: model,model');
    expect(() => usageSeries({ ...base, groupBy: ['prompt' as never] })).toThrow('unknown dimension: "prompt"');
    const evil = "x' OR 1=1 --";
    const built = usageSeries({ ...base, tenant: evil });
    expect(built.query).not.toContain(evil);
    expect(built.query_params.tenant).toBe(evil);
  });
});
