/**
 * `jsonSchema({...})`: a JSON Schema that also carries, for the type checker, the TypeScript type it
 * describes, so that `defineTool({ input: jsonSchema({...}), run(ctx, input) })` types `input`
 * without a schema library. At run time it is the plain object (Ajv validates it, as any JSON
 * Schema input). The type covers the keywords that decide a shape: `type` (one or a list),
 * `properties` + `required`, `additionalProperties`, `items`, `enum`, `const`, `anyOf`, `oneOf`;
 * other keywords (`minLength`, `format`, ...) are allowed and validated, but do not change the type.
 */

type JsonTypeName = 'string' | 'number' | 'integer' | 'boolean' | 'null' | 'array' | 'object';
type JsonPrimitive = string | number | boolean | null;

export interface JsonSchema {
  type?: JsonTypeName | readonly JsonTypeName[];
  properties?: { readonly [name: string]: JsonSchema };
  required?: readonly string[];
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  enum?: readonly JsonPrimitive[];
  const?: JsonPrimitive;
  anyOf?: readonly JsonSchema[];
  oneOf?: readonly JsonSchema[];
  description?: string;
  [keyword: string]: unknown;
}

declare const described: unique symbol;

/** A JSON Schema tagged with the type it describes (type-level only: the tag never exists). */
export type TypedJsonSchema<T> = JsonSchema & { readonly [described]: T };

/** The type a `jsonSchema()` result describes. */
export type JsonSchemaType<S> = S extends { readonly [described]: infer T } ? T : unknown;

export function jsonSchema<const S extends JsonSchema>(schema: S): S & TypedJsonSchema<FromJsonSchema<S>> {
  return schema as S & TypedJsonSchema<FromJsonSchema<S>>;
}

type Simplify<T> = { [K in keyof T]: T[K] } & {};

/** The TypeScript type of a JSON Schema literal. */
export type FromJsonSchema<S> = S extends { const: infer C }
  ? C
  : S extends { enum: readonly (infer E)[] }
    ? E
    : S extends { anyOf: readonly (infer A)[] }
      ? FromJsonSchema<A>
      : S extends { oneOf: readonly (infer A)[] }
        ? FromJsonSchema<A>
        : S extends { type: readonly (infer T)[] }
          ? FromTyped<S, T>
          : S extends { type: infer T }
            ? FromTyped<S, T>
            : unknown;

type FromTyped<S, T> = T extends 'string'
  ? string
  : T extends 'number' | 'integer'
    ? number
    : T extends 'boolean'
      ? boolean
      : T extends 'null'
        ? null
        : T extends 'array'
          ? S extends { items: infer I }
            ? FromJsonSchema<I>[]
            : unknown[]
          : T extends 'object'
            ? FromObject<S>
            : never;

type RequiredKeys<S> = S extends { required: readonly (infer R)[] } ? R : never;

type Extra<S> = S extends { additionalProperties: false }
  ? unknown
  : S extends { additionalProperties: infer A extends JsonSchema }
    ? { [key: string]: FromJsonSchema<A> }
    : S extends { additionalProperties: true }
      ? { [key: string]: unknown }
      : unknown;

type FromObject<S> = S extends { properties: infer P }
  ? Simplify<
      { -readonly [K in keyof P & string as K extends RequiredKeys<S> ? K : never]: FromJsonSchema<P[K]> } & {
        -readonly [K in keyof P & string as K extends RequiredKeys<S> ? never : K]?: FromJsonSchema<P[K]>;
      } & Extra<S>
    >
  : S extends { additionalProperties: false }
    ? Record<string, never>
    : S extends { additionalProperties: infer A extends JsonSchema }
      ? { [key: string]: FromJsonSchema<A> }
      : { [key: string]: unknown };
