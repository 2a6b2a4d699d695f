/** Building blocks of the OpenAPI document's schemas (openapi.ts, openapi-schemas.ts, openapi-events.ts). */
export type Json = Record<string, unknown>;

export const ref = (name: string): Json => ({ $ref: `#/components/schemas/${name}` });
export const timestamp: Json = { type: 'string', format: 'date-time' };
export const nullableTimestamp: Json = { type: ['string', 'null'], format: 'date-time' };
/** An object with any keys and values (JSON). */
export const freeForm = (description?: string): Json => ({ type: 'object', additionalProperties: true, ...(description ? { description } : {}) });

/** An object schema; every property required unless `required` says otherwise. */
export function obj(properties: Record<string, Json>, required: string[] = Object.keys(properties)): Json {
  return { type: 'object', properties, required };
}
