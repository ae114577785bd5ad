/**
 * Films this process accepted and has not scored yet, kept in memory up to a byte budget: a
 * worker in the same process scores them from here instead of reading the stored file back
 * and hashing it again (about a tenth of the CPU a 2048x2048 study costs the service). A film
 * another process accepted, or one pushed out by newer ones, is read from the store as before.
 */
export class RecentFilms {
  private readonly films = new Map<string, Uint8Array>();
  private held = 0;

  constructor(private readonly maxBytes: number) {}

  /** bytes held now */
  get size(): number {
    return this.held;
  }

  /** Keeps the film (already hashed to `sha256`), pushing out the oldest ones beyond the budget. */
  keep(sha256: string, bytes: Uint8Array): void {
    if (bytes.length > this.maxBytes || this.films.has(sha256)) return;
    // a STOW-RS part is a view of the whole request body: held as it is, it would keep every
    // other part alive while only its own bytes are counted against the budget
    const own = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
    this.films.set(sha256, own);
    this.held += bytes.length;
    for (const [oldest, b] of this.films) {
      if (this.held <= this.maxBytes) break;
      this.films.delete(oldest);
      this.held -= b.length;
    }
  }

  /** The film, once: a retry of the job reads the store, which checks the stored bytes. */
  take(sha256: string): Uint8Array | undefined {
    const bytes = this.films.get(sha256);
    if (bytes) {
      this.films.delete(sha256);
      this.held -= bytes.length;
    }
    return bytes;
  }
}
