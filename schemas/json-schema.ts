/** The JSON Schema files generated from the TypeBox definitions (written by `npm run schemas`). */
import { ContextRecordV1 } from './context-record.ts';
import { UsageEventV1 } from './usage-event.ts';

/** Repository-relative file -> schema. */
export const SCHEMA_FILES: Record<string, unknown> = {
  'schemas/usage-event.schema.json': UsageEventV1,
  'schemas/context-record.schema.json': ContextRecordV1,
};

/** The file text for a schema: keys in declared order, 2-space indent, final newline. */
export function schemaText(schema: unknown): string {
  return `${JSON.stringify({ $schema: 'https://json-schema.org/draft/2020-12/schema', ...(schema as object) }, null, 2)}\n`;
}
