// The schema compiler for routes: TypeBox validates bodies as sent (no type coercion, so a
// number is not a string), and converts query-string and path values only when they are
// exactly what the schema wants: an integer parameter must be written as an integer.
import type { FastifySchemaCompiler } from 'fastify';
import type { TSchema } from 'typebox';
import { Compile } from 'typebox/compile';

const INTEGER = /^-?\d{1,15}$/;

type ObjectSchema = { properties?: Record<string, { type?: unknown }> };

/** Converts integer-typed properties written as plain decimal integers; leaves everything else. */
function convertParameters(schema: ObjectSchema, value: unknown): unknown {
  if (typeof value !== 'object' || value === null || !schema.properties) return value;
  const out: Record<string, unknown> = { ...(value as Record<string, unknown>) };
  for (const [key, property] of Object.entries(schema.properties)) {
    const v = out[key];
    if (property.type === 'integer' && typeof v === 'string' && INTEGER.test(v))
      out[key] = Number(v);
  }
  return out;
}

export const validatorCompiler: FastifySchemaCompiler<TSchema> = ({ schema, httpPart }) => {
  const validator = Compile(schema);
  return (value) => {
    const input = httpPart === 'body' ? value : convertParameters(schema as ObjectSchema, value);
    if (validator.Check(input)) return { value: input };
    return { error: validator.Errors(input) as never };
  };
};
