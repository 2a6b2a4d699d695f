/**
 * Embeddings without a model: feature hashing. Each lower-cased word and each character trigram of
 * each word is hashed into one of `dimensions` buckets with a hash-derived sign, and the vector is
 * L2-normalised. Texts sharing words or word fragments ("sat"/"sit" share nothing, but "cat" does)
 * land near each other, which is all a retrieval test needs; identical texts give identical vectors.
 */
import { fnv1a } from './content.ts';

// Words that every English sentence shares: hashing them would pull unrelated texts together.
const STOP_WORDS = new Set([
  'a', 'an', 'the', 'and', 'or', 'of', 'to', 'in', 'on', 'at', 'is', 'are', 'was', 'were', 'be', 'it',
  'did', 'do', 'does', 'where', 'what', 'who', 'how', 'why', 'when', 'into', 'for', 'with', 'by', 'this', 'that',
]);

const WORD_WEIGHT = 1;
// Trigrams let morphological variants meet ("markets"/"market"); weighted lower so that whole-word
// matches dominate.
const TRIGRAM_WEIGHT = 0.5;

export function embed(text: string, dimensions: number): Float32Array {
  const acc = new Float64Array(dimensions);
  const words = text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
  for (const word of words) {
    if (STOP_WORDS.has(word)) continue;
    add(acc, `w:${word}`, WORD_WEIGHT);
    const padded = `^${word}$`;
    for (let i = 0; i + 3 <= padded.length; i++) add(acc, `t:${padded.slice(i, i + 3)}`, TRIGRAM_WEIGHT);
  }
  let norm = 0;
  for (const x of acc) norm += x * x;
  const out = new Float32Array(dimensions);
  if (norm === 0) {
    // An empty (or all stop-word) text still gets a unit vector, so cosine similarity is defined.
    out[fnv1a('empty') % dimensions] = 1;
    return out;
  }
  const scale = 1 / Math.sqrt(norm);
  for (let i = 0; i < dimensions; i++) out[i] = (acc[i] ?? 0) * scale;
  return out;
}

function add(acc: Float64Array, feature: string, weight: number): void {
  const bucket = fnv1a(feature) % acc.length;
  // A second, independent hash picks the sign, so collisions cancel on average instead of adding up.
  const sign = fnv1a(feature, 0x9747b28c) & 1 ? -1 : 1;
  acc[bucket] = (acc[bucket] ?? 0) + sign * weight;
}

/** The `encoding_format: 'base64'` form: little-endian float32 bytes, as the OpenAI API sends them. */
export function toBase64(vector: Float32Array): string {
  return Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength).toString('base64');
}

export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    dot += x * y;
    na += x * x;
    nb += y * y;
  }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
}
