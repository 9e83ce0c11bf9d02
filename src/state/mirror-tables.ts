/**
 * The mirror's storage, sized for a million listed entries per sidecar. A Map<string, number>
 * costs ~90 B of heap per entry (key string, a boxed double for the expiry, the Map's own slots);
 * exact IP blocks here cost 12 B per slot at a load of 1/4-1/2, and user lists keep only the
 * Map<string, small int> with expiries in a Float64Array (bench/state-scale.ts, memory probe).
 * Expiries stay exact milliseconds (Float64; Infinity for no TTL): rounding could only make an
 * entry outlive its Redis key or die before it.
 */

/**
 * MurmurHash3's finaliser: a bijection on 32 bits in which every input bit reaches every output
 * bit. Chained over the key's words from a random per-table seed, so the slots an address lands in
 * cannot be predicted from outside. The keys come from auto-remediation, i.e. from addresses an
 * attacker picks (any of the 2^64 in its own IPv6 /64): with the unseeded multiply-xor hash this
 * replaced, colliding addresses were trivial to compute, and a few thousand blocked ones would
 * have turned every lookup in their cluster into a scan on every sidecar of the mesh.
 */
function fmix(x: number): number {
  let h = x;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

function randomSeed(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0] as number;
}
const MIN_BITS = 4;

/** An expiry of 0 marks an empty slot, NaN a deleted one (a probe goes on past it). */
const EMPTY = 0;
/** What an expiry of 0 (or NaN) is stored as: expired at any clock, yet neither empty nor deleted. */
const LONG_AGO = -Infinity;

/**
 * Open-addressing (linear probing) hash of IP -> expiry over typed arrays: `words` Uint32 per key
 * (1 for IPv4, 4 for IPv6). Grows at half full; deletes leave tombstones, cleared on rehash.
 */
export class IpTable {
  private bits = MIN_BITS;
  private readonly seed = randomSeed();
  private keys: Uint32Array;
  private exp: Float64Array;
  /** Live entries. */
  size = 0;
  /** Live entries plus tombstones: what decides the next rehash. */
  private used = 0;

  constructor(private readonly words: 1 | 4) {
    this.keys = new Uint32Array((1 << this.bits) * words);
    this.exp = new Float64Array(1 << this.bits);
  }

  private slot(a: number, b: number, c: number, d: number): number {
    let h = fmix(this.seed ^ a);
    if (this.words === 4) h = fmix(fmix(fmix(h ^ b) ^ c) ^ d);
    return h >>> (32 - this.bits);
  }

  /** get() for a one-word (IPv4) table: the hot path, kept small enough to inline. */
  get1(a: number): number {
    const exp = this.exp;
    const mask = exp.length - 1;
    for (let i = fmix(this.seed ^ a) >>> (32 - this.bits); ; i = (i + 1) & mask) {
      const e = exp[i] as number;
      if (e === EMPTY) return -Infinity;
      if (this.keys[i] === a && e === e) return e;
    }
  }

  /** The longest run of occupied slots: what a miss that lands in it walks (tests, to see clustering). */
  longestRun(): number {
    let best = 0;
    let run = 0;
    // Twice round, so a run that wraps past the end is counted whole.
    for (let n = 0; n < 2 * this.exp.length; n++) {
      run = this.exp[n % this.exp.length] === EMPTY ? 0 : run + 1;
      if (run > best) best = run;
    }
    return Math.min(best, this.exp.length);
  }

  /** The expiry of a live key, or -Infinity when absent. */
  get(a: number, b = 0, c = 0, d = 0): number {
    const { keys, exp, words } = this;
    const mask = (1 << this.bits) - 1;
    for (let i = this.slot(a, b, c, d); ; i = (i + 1) & mask) {
      const e = exp[i] as number;
      if (e === EMPTY) return -Infinity;
      const k = i * words;
      // A tombstone's NaN expiry fails every comparison, so a match on it is a miss.
      if (keys[k] === a && (words === 1 || (keys[k + 1] === b && keys[k + 2] === c && keys[k + 3] === d)) && e === e) return e;
    }
  }

  /** Whether the key is present, expired or not: get() returns -Infinity for an absent key and for one stored with 0. */
  has(a: number, b = 0, c = 0, d = 0): boolean {
    const { keys, exp, words } = this;
    const mask = (1 << this.bits) - 1;
    for (let i = this.slot(a, b, c, d); ; i = (i + 1) & mask) {
      const e = exp[i] as number;
      if (e === EMPTY) return false;
      const k = i * words;
      if (keys[k] === a && (words === 1 || (keys[k + 1] === b && keys[k + 2] === c && keys[k + 3] === d)) && e === e) return true;
    }
  }

  set(expiresAtMs: number, a: number, b = 0, c = 0, d = 0): void {
    const { keys, exp, words } = this;
    const mask = (1 << this.bits) - 1;
    const value = expiresAtMs === EMPTY || expiresAtMs !== expiresAtMs ? LONG_AGO : expiresAtMs;
    let free = -1;
    let i = this.slot(a, b, c, d);
    for (; ; i = (i + 1) & mask) {
      const e = exp[i] as number;
      if (e === EMPTY) break;
      if (e !== e) {
        if (free < 0) free = i;
        continue;
      }
      const k = i * words;
      if (keys[k] === a && (words === 1 || (keys[k + 1] === b && keys[k + 2] === c && keys[k + 3] === d))) {
        exp[i] = value;
        return;
      }
    }
    if (free >= 0) i = free;
    else this.used++;
    const k = i * words;
    keys[k] = a;
    if (words === 4) {
      keys[k + 1] = b;
      keys[k + 2] = c;
      keys[k + 3] = d;
    }
    exp[i] = value;
    this.size++;
    if (this.used * 2 > exp.length) this.rehash(this.size * 4 > exp.length ? this.bits + 1 : this.bits);
  }

  delete(a: number, b = 0, c = 0, d = 0): void {
    const { keys, exp, words } = this;
    const mask = (1 << this.bits) - 1;
    for (let i = this.slot(a, b, c, d); ; i = (i + 1) & mask) {
      const e = exp[i] as number;
      if (e === EMPTY) return;
      const k = i * words;
      if (e === e && keys[k] === a && (words === 1 || (keys[k + 1] === b && keys[k + 2] === c && keys[k + 3] === d))) {
        exp[i] = NaN;
        this.size--;
        return;
      }
    }
  }

  /** Drops entries expired at `nowMs`, and shrinks a table left mostly empty. */
  sweep(nowMs: number): void {
    const exp = this.exp;
    for (let i = 0; i < exp.length; i++) {
      const e = exp[i] as number;
      if (e !== EMPTY && e <= nowMs) {
        exp[i] = NaN;
        this.size--;
      }
    }
    let bits = this.bits;
    while (bits > MIN_BITS && this.size * 8 < 1 << bits) bits--;
    if (bits !== this.bits || this.used > this.size * 2) this.rehash(bits);
  }

  /** Live entries in slot order: key words and expiry. */
  *entries(): Generator<[Uint32Array, number]> {
    const key = new Uint32Array(this.words);
    for (let i = 0; i < this.exp.length; i++) {
      const e = this.exp[i] as number;
      if (e === EMPTY || e !== e) continue;
      for (let w = 0; w < this.words; w++) key[w] = this.keys[i * this.words + w] as number;
      yield [key, e];
    }
  }

  private rehash(bits: number): void {
    const { keys, exp, words } = this;
    this.bits = bits;
    this.keys = new Uint32Array((1 << bits) * words);
    this.exp = new Float64Array(1 << bits);
    this.size = 0;
    this.used = 0;
    for (let i = 0; i < exp.length; i++) {
      const e = exp[i] as number;
      if (e === EMPTY || e !== e) continue;
      const k = i * words;
      if (words === 1) this.set(e, keys[k] as number);
      else this.set(e, keys[k] as number, keys[k + 1] as number, keys[k + 2] as number, keys[k + 3] as number);
    }
  }
}

/**
 * String id -> expiry (and, for risk, a score): the Map holds only a small-integer row number,
 * which V8 stores unboxed; the doubles live in typed arrays. Freed rows are reused.
 */
export class IdTable {
  private rows = new Map<string, number>();
  private exp = new Float64Array(16);
  private score: Float64Array | undefined;
  private free: number[] = [];

  constructor(withScore: boolean) {
    if (withScore) this.score = new Float64Array(16);
  }

  get size(): number {
    return this.rows.size;
  }

  /** The expiry of `id`, or -Infinity when absent. */
  expiry(id: string): number {
    const row = this.rows.get(id);
    return row === undefined ? -Infinity : (this.exp[row] as number);
  }

  /** The score of `id` if it has not expired at `nowMs`. */
  scoreAt(id: string, nowMs: number): number | undefined {
    const row = this.rows.get(id);
    return row !== undefined && (this.exp[row] as number) > nowMs ? this.score?.[row] : undefined;
  }

  set(id: string, expiresAtMs: number, score = 0): void {
    let row = this.rows.get(id);
    if (row === undefined) {
      row = this.free.pop() ?? this.rows.size;
      if (row >= this.exp.length) this.resize(this.exp.length * 2);
      this.rows.set(id, row);
    }
    this.exp[row] = expiresAtMs;
    if (this.score !== undefined) this.score[row] = score;
  }

  delete(id: string): void {
    const row = this.rows.get(id);
    if (row === undefined) return;
    this.rows.delete(id);
    this.free.push(row);
  }

  sweep(nowMs: number): void {
    for (const [id, row] of this.rows) if ((this.exp[row] as number) <= nowMs) this.delete(id);
    // Mostly empty after a sweep: renumber the rows (Map order is kept) into smaller arrays.
    if (this.exp.length > 16 && this.rows.size * 4 < this.exp.length) {
      const old = { exp: this.exp, score: this.score };
      let cap = 16;
      while (cap < this.rows.size * 2) cap *= 2;
      this.exp = new Float64Array(cap);
      if (old.score !== undefined) this.score = new Float64Array(cap);
      let n = 0;
      for (const [id, row] of this.rows) {
        this.exp[n] = old.exp[row] as number;
        if (this.score !== undefined) this.score[n] = old.score?.[row] as number;
        this.rows.set(id, n++);
      }
      this.free = [];
    }
  }

  /** Entries in insertion order: id, expiry, score. */
  *entries(): Generator<[string, number, number]> {
    for (const [id, row] of this.rows) yield [id, this.exp[row] as number, this.score?.[row] ?? 0];
  }

  private resize(cap: number): void {
    const exp = new Float64Array(cap);
    exp.set(this.exp);
    this.exp = exp;
    if (this.score !== undefined) {
      const score = new Float64Array(cap);
      score.set(this.score);
      this.score = score;
    }
  }
}
