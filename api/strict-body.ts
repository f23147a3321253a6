/**
 * Strict validation of a JSON request body against its TypeBox schema, for read-API routes that
 * take a body (POST /v1/route). fastify's default Ajv coerces types ("100" -> 100, "x" -> ["x"])
 * and drops unknown properties, so a typo in a hard filter (`required_complaince`) would be
 * ignored and route where it should not. This validator coerces nothing and drops nothing, and
 * refuses lone surrogates (text that is not valid Unicode), as event validation does.
 *
 * Use as the route's `validatorCompiler`; errors reach the route's error handler as a fastify
 * validation error, `body.<field>: <reason>` for every problem.
 */
import type { TSchema } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import type { FastifySchemaCompiler } from 'fastify';
import { LONE_SURROGATE } from '../domain/usage-event-validation.ts';
import { describeSchemaError } from '../schemas/schema-problems.ts';

/** Whether any string in `value` holds a lone surrogate (no allocation: runs on every request). */
function hasSurrogate(value: unknown): boolean {
  if (typeof value === 'string') return LONE_SURROGATE.test(value);
  if (Array.isArray(value)) {
    for (const v of value) if (hasSurrogate(v)) return true;
  } else if (value !== null && typeof value === 'object') {
    for (const k in value) if (hasSurrogate((value as Record<string, unknown>)[k])) return true;
  }
  return false;
}

/** Paths of strings holding a lone surrogate, as `a.b.0`. */
function surrogatePaths(value: unknown, path: string, out: string[]): void {
  if (typeof value === 'string') {
    if (LONE_SURROGATE.test(value)) out.push(path);
  } else if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) surrogatePaths(value[i], `${path}.${i}`, out);
  } else if (value !== null && typeof value === 'object')
    for (const [k, v] of Object.entries(value)) surrogatePaths(v, path ? `${path}.${k}` : k, out);
}

/**
 * A fastify validator compiler for bodies: TypeBox's compiled check, no coercion, no removal.
 * @returns `{ value }` when valid, else `{ error }` whose message lists `body.<path>: <reason>` for each problem.
 */
export const strictBodyCompiler: FastifySchemaCompiler<unknown> = ({ schema }) => {
  const check = TypeCompiler.Compile(schema as TSchema);
  return (data: unknown) => {
    // The compiled check and the surrogate scan are cheap; the error walks only run for a bad body.
    if (check.Check(data) && !hasSurrogate(data)) return { value: data };
    const bad: string[] = [];
    surrogatePaths(data, '', bad);
    const problems = [...check.Errors(data)].map((e) => `body${e.path.replaceAll('/', '.')}: ${describeSchemaError(e)}`);
    for (const p of bad) problems.push(`body.${p}: not valid Unicode text (lone surrogate)`);
    if (problems.length === 0) return { value: data };
    const error = new Error([...new Set(problems)].join('; ')) as Error & { validation: unknown[]; statusCode: number };
    error.validation = problems;
    error.statusCode = 400;
    return { error };
  };
};
