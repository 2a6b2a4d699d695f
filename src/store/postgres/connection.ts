/** How the store talks to PostgreSQL: value parsing shared by every connection. */
import pg from 'pg';

/** int8 as a JS number (epoch ms and counters stay far below 2^53); json as its text, parsed by rows.ts. */
export const TYPES: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    if (oid === 20) return (v: string) => Number(v);
    if (oid === 114) return (v: string) => v;
    return pg.types.getTypeParser(oid, format);
  }) as pg.CustomTypesConfig['getTypeParser'],
};
