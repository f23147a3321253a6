import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ContextRecordV1 } from '../../schemas/context-record.ts';
import { SCHEMA_FILES, schemaText } from '../../schemas/json-schema.ts';
import { UsageEventV1 } from '../../schemas/usage-event.ts';

describe('exported JSON Schema', () => {
  it('schemas/usage-event.schema.json matches the TypeBox definition (run `npm run schemas` after a change)', () => {
    expect(readFileSync('schemas/usage-event.schema.json', 'utf8')).toBe(schemaText(UsageEventV1));
  });

  it('schemas/context-record.schema.json matches the TypeBox definition (run `npm run schemas` after a change)', () => {
    expect(readFileSync('schemas/context-record.schema.json', 'utf8')).toBe(schemaText(ContextRecordV1));
  });

  it('every exported file is checked by a test above', () => {
    expect(Object.keys(SCHEMA_FILES).sort()).toEqual(['schemas/context-record.schema.json', 'schemas/usage-event.schema.json']);
  });
});
