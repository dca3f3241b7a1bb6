/**
 * The TypeScript type of the data a schema node admits once ajv has filled in its defaults,
 * computed from the schema itself, so the config's raw type cannot drift from schema.ts.
 *
 * Why not a library: the schema uses a closed subset of JSON Schema (schema.ts's `SchemaNode`:
 * a dozen keywords), which these few conditional types cover completely. json-schema-to-ts'
 * `FromSchema` covers all of JSON Schema through a large type-level algebra (a dependency,
 * and compile time spent on keywords we never use); TypeBox would replace the plain-data
 * schema with builder calls and load TypeBox at run time (validate.generated.ts imports
 * schema.ts), with `x-expected` and the unit formats passed through as extra options. A
 * generator writing the type next to validate.generated.ts would work too, but catches
 * drift only when the freshness test runs, where this catches it at every type check.
 *
 * The rules follow ajv with `useDefaults`: a property is present when it is `required` or
 * has a `default`, and optional (`?:`, exact under exactOptionalPropertyTypes) otherwise.
 * `anyOf` is the union of its branches.
 * `format` and `pattern` narrow nothing: a duration is still a string until convert.ts.
 * A node this file does not understand maps to `unknown`, which {@link Understood} turns
 * into a type error wherever the raw config is used.
 */

/** JSON Schema's primitive type names, as in `type: [string, number, boolean]`. */
type Primitive<T> = T extends 'string' ? string : T extends 'number' | 'integer' ? number : T extends 'boolean' ? boolean : unknown

type RequiredKeys<S> = S extends { readonly required: readonly (infer K)[] } ? K : never
type DefaultedKeys<P> = { [K in keyof P]: P[K] extends { readonly default: unknown } ? K : never }[keyof P]

/** Re-states an intersection as one object type (modifiers kept), for readable hovers and errors. */
type Flatten<T> = { [K in keyof T]: T[K] } & {}

type ObjectOf<P, Present> = Flatten<
  { readonly [K in keyof P as K extends Present ? K : never]: FromSchema<P[K]> } & {
    readonly [K in keyof P as K extends Present ? never : K]?: FromSchema<P[K]>
  }
>

/**
 * @example
 * type Upstream = FromSchema<typeof upstream> // { readonly url: string; readonly timeout: string; ... }
 */
export type FromSchema<S> = S extends { readonly enum: readonly (infer V)[] }
  ? V
  : S extends { readonly anyOf: readonly (infer B)[] }
    ? FromSchema<B>
    : S extends { readonly type: readonly (infer T)[] }
      ? Primitive<T>
      : S extends { readonly type: 'array'; readonly items: infer I }
        ? readonly FromSchema<I>[]
        : S extends { readonly type: 'object'; readonly properties: infer P }
          ? ObjectOf<P, RequiredKeys<S> | DefaultedKeys<P>>
          : S extends { readonly type: 'object'; readonly additionalProperties: infer A extends object }
            ? Readonly<Record<string, FromSchema<A>>>
            : S extends { readonly type: infer T }
              ? Primitive<T>
              : unknown

/** True when `unknown` occurs anywhere in T: FromSchema met a node it does not understand. */
type HasUnknown<T> = unknown extends T
  ? true
  : T extends readonly (infer E)[]
    ? HasUnknown<E>
    : T extends object
      ? true extends { [K in keyof T]-?: HasUnknown<T[K]> }[keyof T]
        ? true
        : false
      : false

/**
 * T itself, or, when part of it is `unknown`, an object with none of T's keys: every use of
 * the raw config is then a type error that names the problem.
 */
export type Understood<T> = HasUnknown<T> extends true ? { readonly 'a schema node that from-schema.ts does not understand': true } : T
