import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { validateUsageEvent } from '../../domain/usage-event-validation.ts';
import { parseAzureTimestamp } from '../../ingest/importers/azure-2023.importer.ts';
import { eventIdOf, type ImportedRecord, type ImporterOptions, startTimeMs, type TraceFormat } from '../../ingest/importers/importer.ts';
import { detectFormat, importers } from '../../ingest/importers/index.ts';

const SAMPLES = fileURLToPath(new URL('../../data/samples/', import.meta.url));
const AZURE_CODE = join(SAMPLES, 'AzureLLMInferenceTrace_code.csv');
const AZURE_CONV = join(SAMPLES, 'AzureLLMInferenceTrace_conv.csv');
const BURST_1 = join(SAMPLES, 'BurstGPT_1_first400.csv');
const BURST_3 = join(SAMPLES, 'BurstGPT_3_first400.csv');
const MOONCAKE = join(SAMPLES, 'conversation_trace.jsonl');

/** "Now" for validation: after every sample's event time. */
const NOW_MS = Date.UTC(2026, 0, 1);

async function readAll(format: TraceFormat, path: string, options: ImporterOptions = {}): Promise<ImportedRecord[]> {
  const out: ImportedRecord[] = [];
  for await (const r of importers[format].read(path, options)) out.push(r);
  return out;
}

function at(records: ImportedRecord[], file: string, line: number): Record<string, unknown> {
  const r = records.find((x) => x.source === `${file}:${line}`);
  if (!r) throw new Error(`no record for ${file}:${line}`);
  return r.value;
}

const tmpDirs: string[] = [];
afterAll(() => {
  for (const dir of tmpDirs) rmSync(dir, { recursive: true, force: true });
});

function tmpFile(name: string, content: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'quotaflow-importers-'));
  tmpDirs.push(dir);
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

function expectAllValid(records: ImportedRecord[]): void {
  const invalid = records
    .map((r) => ({ source: r.source, result: validateUsageEvent(r.value, { nowMs: NOW_MS }) }))
    .filter((x) => !x.result.ok);
  expect(invalid).toEqual([]);
}

describe('azure-2023 importer', () => {
  it('maps the first and last rows of the code trace exactly (UTC, fraction truncated to ms)', async () => {
    const records = await readAll('azure-2023', AZURE_CODE);
    expect(records).toHaveLength(8819);
    // line 2: 2023-11-16 18:17:03.9799600,4808,10 (rounding would give .980)
    expect(records[0]).toEqual({
      source: 'AzureLLMInferenceTrace_code.csv:2',
      value: {
        event_id: 'azure-2023:AzureLLMInferenceTrace_code:2',
        timestamp: Date.UTC(2023, 10, 16, 18, 17, 3, 979),
        tenant: 'azure-code',
        provider: 'azure',
        model: 'azure-llm-2023-code',
        input_tokens: 4808,
        output_tokens: 10,
      },
    });
    // line 3: 2023-11-16 18:17:04.0319600,3180,8
    expect(at(records, 'AzureLLMInferenceTrace_code.csv', 3)).toMatchObject({
      timestamp: Date.UTC(2023, 10, 16, 18, 17, 4, 31),
      input_tokens: 3180,
      output_tokens: 8,
    });
    // last line (8820, no trailing line break): 2023-11-16 19:14:19.9280160,549,173
    expect(records.at(-1)?.value).toMatchObject({
      event_id: 'azure-2023:AzureLLMInferenceTrace_code:8820',
      timestamp: Date.UTC(2023, 10, 16, 19, 14, 19, 928),
      input_tokens: 549,
      output_tokens: 173,
    });
    expectAllValid(records);
  });

  it('maps the conv trace with its own tenant and placeholder model; options override defaults', async () => {
    const records = await readAll('azure-2023', AZURE_CONV);
    // line 2: 2023-11-16 18:15:46.6805900,374,44
    expect(records[0]?.value).toEqual({
      event_id: 'azure-2023:AzureLLMInferenceTrace_conv:2',
      timestamp: Date.UTC(2023, 10, 16, 18, 15, 46, 680),
      tenant: 'azure-conv',
      provider: 'azure',
      model: 'azure-llm-2023-conv',
      input_tokens: 374,
      output_tokens: 44,
    });
    const custom = await readAll('azure-2023', AZURE_CONV, { tenant: 't1', provider: 'p1', model: 'm1', userId: 'u1' });
    expect(custom[0]?.value).toMatchObject({ tenant: 't1', provider: 'p1', model: 'm1', user_id: 'u1' });
  });

  it('parses the 7-digit timestamp by hand, truncating and rejecting bad dates', () => {
    expect(parseAzureTimestamp('2023-11-16 18:17:03.9999999')).toBe(Date.UTC(2023, 10, 16, 18, 17, 3, 999));
    expect(parseAzureTimestamp('2023-11-16 18:17:03')).toBe(Date.UTC(2023, 10, 16, 18, 17, 3));
    expect(parseAzureTimestamp('2023-02-30 00:00:00.0000000')).toBeNull();
    expect(parseAzureTimestamp('2023-11-16T18:17:03Z')).toBeNull();
    expect(parseAzureTimestamp('')).toBeNull();
  });

  it('token sums over both whole files equal the column sums (computed here by splitting the CSV)', async () => {
    for (const path of [AZURE_CODE, AZURE_CONV]) {
      const lines = readFileSync(path, 'utf8')
        .split(/\r?\n/)
        .slice(1)
        .filter((l) => l !== '');
      let expIn = 0;
      let expOut = 0;
      for (const l of lines) {
        const [, i, o] = l.split(',');
        expIn += Number(i);
        expOut += Number(o);
      }
      let gotIn = 0;
      let gotOut = 0;
      let n = 0;
      for await (const r of importers['azure-2023'].read(path, {})) {
        gotIn += r.value.input_tokens as number;
        gotOut += r.value.output_tokens as number;
        n += 1;
      }
      expect(n).toBe(lines.length);
      expect([gotIn, gotOut]).toEqual([expIn, expOut]);
    }
    // Cross-check with awk (run by hand: awk -F, 'NR>1{i+=$2;o+=$3} END{print i,o}' <file>):
    // code 18059974 245896, conv 22361870 4088665.
  });
});

describe('burstgpt importer', () => {
  it('maps the 6-column _1 layout: relative seconds, model names, failures, log type', async () => {
    const records = await readAll('burstgpt', BURST_1);
    expect(records).toHaveLength(400);
    const start = Date.UTC(2023, 6, 1); // documented placeholder default start
    // line 2: 5,ChatGPT,472,18,490,Conversation log
    expect(records[0]).toEqual({
      source: 'BurstGPT_1_first400.csv:2',
      value: {
        event_id: 'burstgpt:BurstGPT_1_first400:2',
        timestamp: start + 5_000,
        tenant: 'burstgpt',
        provider: 'azure-openai',
        model: 'gpt-3.5-turbo',
        input_tokens: 472,
        output_tokens: 18,
        status: 'ok',
        tags: { log_type: 'Conversation log' },
      },
    });
    // line 4: 118,GPT-4,417,276,693,Conversation log
    expect(at(records, 'BurstGPT_1_first400.csv', 4)).toMatchObject({
      timestamp: start + 118_000,
      model: 'gpt-4',
      input_tokens: 417,
      output_tokens: 276,
    });
    // line 22: 1106,ChatGPT,0,0,0,Conversation log -> failed request
    expect(at(records, 'BurstGPT_1_first400.csv', 22)).toMatchObject({ input_tokens: 0, output_tokens: 0, status: 'error' });
    // line 102: 28765,GPT-4,930,83,1013,API log
    expect(at(records, 'BurstGPT_1_first400.csv', 102)).toMatchObject({ timestamp: start + 28_765_000, tags: { log_type: 'API log' } });
    expect(records.filter((r) => r.value.status === 'error')).toHaveLength(17); // README: 17 failures in this slice
    expect(records.every((r) => !('task_id' in r.value) && !('latency_ms' in r.value))).toBe(true);
    expectAllValid(records);
  });

  it('maps the 8-column _3 layout: Session ID -> task_id, Elapsed time -> latency_ms', async () => {
    const records = await readAll('burstgpt', BURST_3);
    expect(records).toHaveLength(400);
    const start = Date.UTC(2023, 6, 1);
    // line 2: 19440110.0,1722ac82-0a46-4bf0-aa08-89794e7a2b3f,43,GPT-4,906,446,1352,Conversation log
    expect(records[0]?.value).toEqual({
      event_id: 'burstgpt:BurstGPT_3_first400:2',
      timestamp: start + 19_440_110_000,
      tenant: 'burstgpt',
      task_id: '1722ac82-0a46-4bf0-aa08-89794e7a2b3f',
      provider: 'azure-openai',
      model: 'gpt-4',
      input_tokens: 906,
      output_tokens: 446,
      latency_ms: 43_000,
      status: 'ok',
      tags: { log_type: 'Conversation log' },
    });
    // line 56: 19454781.0,,21,GPT-4,264,171,435,API log -> no task_id
    const api = at(records, 'BurstGPT_3_first400.csv', 56);
    expect(api).toMatchObject({
      timestamp: start + 19_454_781_000,
      latency_ms: 21_000,
      input_tokens: 264,
      output_tokens: 171,
      tags: { log_type: 'API log' },
    });
    expect(api).not.toHaveProperty('task_id');
    // line 117: 19473253.0,5433ddce-...,0,ChatGPT,0,0,0,Conversation log -> the one failure
    expect(at(records, 'BurstGPT_3_first400.csv', 117)).toMatchObject({
      task_id: '5433ddce-0bb7-4ffc-ab98-14fa1aaec544',
      latency_ms: 0,
      status: 'error',
      model: 'gpt-3.5-turbo',
    });
    expect(records.filter((r) => r.value.status === 'error')).toHaveLength(1);
    expect(new Set(records.map((r) => r.value.task_id).filter(Boolean)).size).toBe(135); // README: 135 sessions
    expectAllValid(records);
  });

  it('honours startTime (with an offset) and a model override', async () => {
    const records = await readAll('burstgpt', BURST_1, { startTime: '2024-03-01T08:00:00+01:00', model: 'my-model', tenant: 'uni' });
    expect(records[0]?.value).toMatchObject({ timestamp: Date.UTC(2024, 2, 1, 7, 0, 5), model: 'my-model', tenant: 'uni' });
    await expect(readAll('burstgpt', BURST_1, { startTime: '2024-03-01 08:00' })).rejects.toThrow(/startTime/);
  });

  it('token sums equal the column sums', async () => {
    for (const [path, inCol, outCol] of [
      [BURST_1, 2, 3],
      [BURST_3, 4, 5],
    ] as const) {
      const rows = readFileSync(path, 'utf8')
        .split('\n')
        .slice(1)
        .filter((l) => l !== '')
        .map((l) => l.split(','));
      const records = await readAll('burstgpt', path);
      const sum = (f: string) => records.reduce((s, r) => s + (r.value[f] as number), 0);
      expect(sum('input_tokens')).toBe(rows.reduce((s, c) => s + Number(c[inCol]), 0));
      expect(sum('output_tokens')).toBe(rows.reduce((s, c) => s + Number(c[outCol]), 0));
    }
  });
});

describe('mooncake importer', () => {
  const hashOf = (ids: number[]) => createHash('sha256').update(ids.join(',')).digest('hex').slice(0, 32);

  it('maps rows: relative ms, tokens, prompt_hash from hash_ids, prefix_blocks and prefix_chain', async () => {
    const records = await readAll('mooncake', MOONCAKE);
    expect(records).toHaveLength(12031);
    const start = Date.UTC(2024, 0, 1); // documented placeholder default start
    // line 1: {"timestamp": 0, "input_length": 6758, "output_length": 500, "hash_ids": [0, 1, ..., 13]}
    expect(records[0]).toEqual({
      source: 'conversation_trace.jsonl:1',
      value: {
        event_id: 'mooncake:conversation_trace:1',
        timestamp: start,
        tenant: 'mooncake',
        provider: 'moonshot',
        model: 'kimi',
        input_tokens: 6758,
        output_tokens: 500,
        prompt_hash: hashOf([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]),
        // Checkpoints every 512 tokens, named by block id; the last block is partial (6,758 tokens).
        tags: {
          prefix_blocks: '14',
          prefix_chain: '512:0 1024:1 1536:2 2048:3 2560:4 3072:5 3584:6 4096:7 4608:8 5120:9 5632:10 6144:11 6656:12 6758:13',
        },
      },
    });
    expect(records[0]?.value.prompt_hash).toMatch(/^[0-9a-f]{32}$/);
    // last line: timestamp 3536999
    expect(records.at(-1)?.value).toMatchObject({ event_id: 'mooncake:conversation_trace:12031', timestamp: start + 3_536_999 });
    expectAllValid(records);
  });

  it('gives equal prompt_hash to rows with the same hash_ids and different ones otherwise', async () => {
    const records = await readAll('mooncake', MOONCAKE);
    const lines = readFileSync(MOONCAKE, 'utf8').split('\n');
    const ids = (line: number) => (JSON.parse(lines[line - 1] as string) as { hash_ids: number[] }).hash_ids;
    // Lines 41 and 262 have the same chain [0, 975, 976, 977]; line 42 has another.
    expect(ids(41)).toEqual(ids(262));
    expect(ids(41)).not.toEqual(ids(42));
    const h = (line: number) => at(records, 'conversation_trace.jsonl', line).prompt_hash;
    expect(h(41)).toBe(h(262));
    expect(h(41)).not.toBe(h(42));
    expect(h(41)).toBe(hashOf(ids(41)));
    // Same number of distinct hashes as distinct chains.
    const chains = new Set(lines.filter((l) => l !== '').map((l) => JSON.stringify(JSON.parse(l).hash_ids)));
    expect(new Set(records.map((r) => r.value.prompt_hash)).size).toBe(chains.size);
  });

  it('token sums equal the field sums', async () => {
    const rows = readFileSync(MOONCAKE, 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as { input_length: number; output_length: number });
    const records = await readAll('mooncake', MOONCAKE);
    expect(records.reduce((s, r) => s + (r.value.input_tokens as number), 0)).toBe(rows.reduce((s, r) => s + r.input_length, 0));
    expect(records.reduce((s, r) => s + (r.value.output_tokens as number), 0)).toBe(rows.reduce((s, r) => s + r.output_length, 0));
  });
});

describe('format detection', () => {
  it('detects each sample by its first line', async () => {
    expect(await detectFormat(AZURE_CODE)).toBe('azure-2023');
    expect(await detectFormat(AZURE_CONV)).toBe('azure-2023');
    expect(await detectFormat(BURST_1)).toBe('burstgpt');
    expect(await detectFormat(BURST_3)).toBe('burstgpt');
    expect(await detectFormat(MOONCAKE)).toBe('mooncake');
  });

  it('throws an error naming the file when it cannot tell', async () => {
    const unknown = tmpFile('mystery.csv', 'a,b,c\n1,2,3\n');
    await expect(detectFormat(unknown)).rejects.toThrow(unknown);
    const empty = tmpFile('empty.jsonl', '\n\n');
    await expect(detectFormat(empty)).rejects.toThrow(/empty\.jsonl.*empty/);
    const json = tmpFile('other.jsonl', '{"foo": 1}\n');
    await expect(detectFormat(json)).rejects.toThrow(json);
    await expect(detectFormat(join(tmpdir(), 'does-not-exist-quotaflow.csv'))).rejects.toThrow(/does-not-exist-quotaflow\.csv/);
  });

  it('an importer refuses a file of another format, naming it', async () => {
    await expect(readAll('azure-2023', BURST_1)).rejects.toThrow(/BurstGPT_1_first400\.csv.*not an Azure/);
    await expect(readAll('burstgpt', AZURE_CODE)).rejects.toThrow(/AzureLLMInferenceTrace_code\.csv.*not a BurstGPT/);
  });
});

describe('deterministic ids', () => {
  it('two reads of the same file give identical output', async () => {
    for (const [format, path] of [
      ['azure-2023', AZURE_CODE],
      ['burstgpt', BURST_3],
      ['mooncake', MOONCAKE],
    ] as const) {
      const a = await readAll(format, path);
      const b = await readAll(format, path);
      expect(b).toEqual(a);
      expect(new Set(a.map((r) => r.value.event_id)).size).toBe(a.length);
    }
  });

  it('caps ids at 128 characters, keeping them distinct', () => {
    const long = `/x/${'n'.repeat(200)}.csv`;
    const longer = `/x/${'n'.repeat(201)}.csv`;
    const id = eventIdOf('burstgpt', long, 123456);
    expect(id.length).toBeLessThanOrEqual(128);
    expect(id).toMatch(/^burstgpt:n+~[0-9a-f]{8}:123456$/);
    expect(eventIdOf('burstgpt', longer, 123456)).not.toBe(id);
    expect(eventIdOf('mooncake', '/a/b/trace.v2.jsonl', 7)).toBe('mooncake:trace.v2:7');
  });

  it('parses startTime strictly', () => {
    expect(startTimeMs(undefined, '2024-01-01T00:00:00Z')).toBe(Date.UTC(2024, 0, 1));
    expect(startTimeMs('2024-01-01T00:00:00.123-02:30', 'x')).toBe(Date.UTC(2024, 0, 1, 2, 30, 0, 123));
    expect(() => startTimeMs('2024-01-01T00:00:00', 'x')).toThrow(/startTime/);
  });
});

describe('malformed rows are yielded as invalid records, never dropped', () => {
  const reasons = (r: ImportedRecord | undefined) => {
    const result = validateUsageEvent(r?.value, { nowMs: NOW_MS });
    return result.ok ? [] : result.errors.map((e) => e.field);
  };

  it('azure: non-numeric tokens, wrong column count, bad timestamp', async () => {
    const path = tmpFile(
      'AzureLLMInferenceTrace_code.csv',
      [
        'TIMESTAMP,ContextTokens,GeneratedTokens',
        '2023-11-16 18:17:03.9799600,4808,10',
        '2023-11-16 18:17:04.0319600,abc,8',
        '2023-11-16 18:17:05.0000000,1,2,3',
        '16/11/2023 18:17,5,6',
        '2023-11-16 18:17:06.0000000,7',
        '',
        '',
      ].join('\r\n'),
    );
    const records = await readAll('azure-2023', path);
    expect(records.map((r) => r.source)).toEqual([2, 3, 4, 5, 6].map((n) => `AzureLLMInferenceTrace_code.csv:${n}`));
    expect(reasons(records[0])).toEqual([]);

    expect(records[1]?.value).toMatchObject({
      event_id: 'azure-2023:AzureLLMInferenceTrace_code:3',
      input_tokens: 'abc',
      output_tokens: 8,
    });
    expect(reasons(records[1])).toEqual(expect.arrayContaining(['input_tokens', 'import_error']));

    expect(records[2]?.value).toMatchObject({ input_tokens: 1, output_tokens: 2, raw_line: '2023-11-16 18:17:05.0000000,1,2,3' });
    expect(records[2]?.value.import_error).toMatch(/expected 3 columns.*got 4/);
    expect(reasons(records[2])).toContain('import_error');

    expect(records[3]?.value).toMatchObject({ timestamp: '16/11/2023 18:17', input_tokens: 5, output_tokens: 6 });
    expect(reasons(records[3])).toEqual(expect.arrayContaining(['timestamp', 'import_error']));

    expect(records[4]?.value).not.toHaveProperty('output_tokens');
    expect(reasons(records[4])).toEqual(expect.arrayContaining(['output_tokens', 'import_error']));
  });

  it('burstgpt: non-numeric tokens, inconsistent total, short row', async () => {
    const path = tmpFile(
      'burst_bad.csv',
      [
        'Timestamp,Session ID,Elapsed time,Model,Request tokens,Response tokens,Total tokens,Log Type',
        '10.0,s1,2,ChatGPT,10,x,10,Conversation log',
        '11.0,s1,2,GPT-4,10,5,99,Conversation log',
        '12.0,,2,GPT-4',
        '',
      ].join('\n'),
    );
    const records = await readAll('burstgpt', path);
    expect(records).toHaveLength(3);
    expect(records[0]?.value).toMatchObject({ output_tokens: 'x', task_id: 's1' });
    expect(reasons(records[0])).toEqual(expect.arrayContaining(['output_tokens', 'import_error']));
    expect(records[1]?.value.import_error).toMatch(/Total tokens/);
    expect(reasons(records[1])).toEqual(['import_error']);
    expect(records[2]?.value).toMatchObject({ raw_line: '12.0,,2,GPT-4', model: 'gpt-4' });
    expect(reasons(records[2])).toEqual(expect.arrayContaining(['input_tokens', 'output_tokens', 'import_error']));
  });

  it('mooncake: bad JSON, wrong types', async () => {
    const path = tmpFile(
      'moon_bad.jsonl',
      [
        '{"timestamp": 5, "input_length": 600, "output_length": 3, "hash_ids": [1, 2]}',
        '{"timestamp": 6, "input_length": 600, "output_length": 3, "hash_ids": [1, 2',
        '{"timestamp": "soon", "input_length": "600", "output_length": 3}',
        '',
        '[1, 2]',
        '',
      ].join('\n'),
    );
    const records = await readAll('mooncake', path);
    expect(records.map((r) => r.source)).toEqual(['moon_bad.jsonl:1', 'moon_bad.jsonl:2', 'moon_bad.jsonl:3', 'moon_bad.jsonl:5']);
    expect(reasons(records[0])).toEqual([]);
    expect(records[0]?.value).toMatchObject({ timestamp: Date.UTC(2024, 0, 1) + 5, prompt_hash: hashOf12(), tags: { prefix_blocks: '2' } });

    expect(records[1]?.value).toMatchObject({
      event_id: 'mooncake:moon_bad:2',
      tenant: 'mooncake',
      raw_line: '{"timestamp": 6, "input_length": 600, "output_length": 3, "hash_ids": [1, 2',
    });
    expect(records[1]?.value.import_error).toMatch(/invalid JSON/);
    expect(reasons(records[1])).toEqual(expect.arrayContaining(['timestamp', 'input_tokens', 'output_tokens', 'import_error', 'raw_line']));

    expect(records[2]?.value).toMatchObject({ timestamp: 'soon', input_tokens: '600', output_tokens: 3 });
    expect(reasons(records[2])).toEqual(expect.arrayContaining(['timestamp', 'input_tokens', 'import_error']));

    expect(records[3]?.value.import_error).toMatch(/not an object/);
    expect(reasons(records[3]).length).toBeGreaterThan(0);
  });

  function hashOf12(): string {
    return createHash('sha256').update('1,2').digest('hex').slice(0, 32);
  }
});
