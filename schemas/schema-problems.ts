/**
 * Schema problems as config lines: `where.a.b: reason` for every TypeBox error, with a readable
 * reason for a fixed choice (a union of string literals: "must be one of a, b, got "c"", where
 * TypeBox says only "Expected union value"). Used by every config check (config/load.ts,
 * schemas/quota.ts, schemas/team.ts), so a fixed choice reads the same wherever it is.
 */
import type { TSchema } from '@sinclair/typebox';
import { type ValueError, ValueErrorType } from '@sinclair/typebox/errors';
import { Value } from '@sinclair/typebox/value';
import { echoJson } from '../domain/echo.ts';

/**
 * The reason of one TypeBox error: for a union whose branches are all string literals, the
 * allowed values and the value given (JSON); otherwise TypeBox's own message.
 */
export function describeSchemaError(e: ValueError): string {
  if (e.type === ValueErrorType.Union) {
    const options = ((e.schema.anyOf ?? []) as TSchema[]).map((s) => s.const);
    if (options.length > 0 && options.every((o) => typeof o === 'string')) {
      return `must be one of ${options.join(', ')}, got ${echoJson(e.value)}`;
    }
    // Another union may say in words what fits (schema option `expected`, e.g. schemas/config.ts Price).
    if (typeof e.schema.expected === 'string') return `must be ${e.schema.expected}, got ${echoJson(e.value)}`;
  }
  return e.message;
}

/**
 * `where.a.b: reason` for every schema error of `value`, one per field (a missing property is
 * also reported as "Expected string": the first reason of a path stands). Paths listed in `skip`
 * (`/limit`), and everything under them, are left out: the caller checks them itself.
 */
export function schemaProblems(schema: TSchema, value: unknown, where: string, skip: readonly string[] = []): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const e of Value.Errors(schema, value)) {
    if (seen.has(e.path) || skip.some((s) => e.path === s || e.path.startsWith(`${s}/`))) continue;
    seen.add(e.path);
    out.push(`${where}${e.path.replaceAll('/', '.')}: ${describeSchemaError(e)}`);
  }
  return out;
}
