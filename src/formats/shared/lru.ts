/**
 * A small bounded LRU cache for metadata tables (qcow2 L2 tables, VMDK grain tables, VHD
 * bitmaps). Bounded by entry count, so a reader's memory does not grow with the image size.
 * Concurrent misses for the same key share one load.
 */
export class LruCache<K, V> {
  private readonly map = new Map<K, Promise<V>>();
  constructor(private readonly capacity: number) {}

  get(key: K, load: (key: K) => Promise<V>): Promise<V> {
    const hit = this.map.get(key);
    if (hit) {
      // Refresh recency: Map iterates in insertion order.
      this.map.delete(key);
      this.map.set(key, hit);
      return hit;
    }
    const p = load(key);
    this.map.set(key, p);
    // A failed load must not stay cached.
    p.catch(() => {
      if (this.map.get(key) === p) this.map.delete(key);
    });
    while (this.map.size > this.capacity) this.map.delete(this.map.keys().next().value as K);
    return p;
  }

  set(key: K, value: V): void {
    this.map.delete(key);
    this.map.set(key, Promise.resolve(value));
    while (this.map.size > this.capacity) this.map.delete(this.map.keys().next().value as K);
  }

  clear(): void {
    this.map.clear();
  }
}
