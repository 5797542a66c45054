/**
 * The last `capacity` seqs a node emitted to a room, each with its
 * signature (what tells two changes with one seq apart: a failover that lost
 * one may have given its seq to another). A Map keeps insertion order: the
 * oldest is dropped first.
 */
export class RecentSeqs {
  private readonly seqs = new Map<number, string>();

  constructor(private readonly capacity: number) {}

  /** Adds `seq`: 'new', 'again' when it was there with this signature, 'other' when with another (kept as it was). */
  add(seq: number, signature: string): 'new' | 'again' | 'other' {
    const known = this.seqs.get(seq);
    if (known !== undefined) return known === signature ? 'again' : 'other';
    this.seqs.set(seq, signature);
    if (this.seqs.size > this.capacity) this.seqs.delete(this.seqs.keys().next().value!);
    return 'new';
  }

  /** Forgets `seq` and every later one (they were lost: their numbers come again). */
  forgetFrom(seq: number): void {
    for (const known of [...this.seqs.keys()]) if (known >= seq) this.seqs.delete(known);
  }
}
