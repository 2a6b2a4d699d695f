/** Storage for `embed` collections and `retrieve` queries. Implemented by each store dialect. */
export interface VectorItem {
  text: string;
  vector: Float32Array | number[];
  metadata?: Record<string, unknown>;
}

export interface VectorHit {
  text: string;
  /** Cosine similarity in [-1, 1]. */
  score: number;
  metadata: Record<string, unknown> | null;
}

export interface UpsertOptions {
  /** The run whose step stores the items: pruning that run removes them. */
  runId?: string;
}

export interface VectorStore {
  /** Appends items to a collection (created on first use); returns how many were stored. */
  upsert(collection: string, items: VectorItem[], opts?: UpsertOptions): Promise<number>;
  /** Exact top-k by cosine similarity. */
  query(collection: string, vector: Float32Array | number[], k: number): Promise<VectorHit[]>;
  count(collection: string): Promise<number>;
}
