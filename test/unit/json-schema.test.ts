import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { schemaText } from '../../schemas/json-schema.ts';
import { UsageEventV1 } from '../../schemas/usage-event.ts';

describe('exported JSON Schema', () => {
  it('schemas/usage-event.schema.json matches the TypeBox definition (run `npm run schemas` after a change)', () => {
    expect(readFileSync('schemas/usage-event.schema.json', 'utf8')).toBe(schemaText(UsageEventV1));
  });
});
