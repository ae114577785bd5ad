/** A one-line progress bar with images/s and ETA for long jobs, written to stderr. */
export interface ProgressStream {
  write(s: string): boolean;
  isTTY?: boolean;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const mm = String(m).padStart(h > 0 ? 2 : 1, '0');
  return `${h > 0 ? `${h}:` : ''}${mm}:${String(sec).padStart(2, '0')}`;
}

export class ProgressBar {
  private done = 0;
  private readonly start = Date.now();
  private lastPrint = 0;

  constructor(
    private readonly stream: ProgressStream,
    private readonly label: string,
    private readonly total: number,
    /** on a non-terminal stream (a log file) print a line at most this often */
    private readonly intervalMs = 10_000,
  ) {}

  line(extra = ''): string {
    const width = 24;
    const frac = this.total > 0 ? Math.min(1, this.done / this.total) : 1;
    const filled = Math.round(frac * width);
    const secs = (Date.now() - this.start) / 1000;
    const rate = secs > 0 ? this.done / secs : 0;
    const eta = rate > 0 ? (this.total - this.done) / rate : NaN;
    return `${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${this.done}/${this.total} ${rate.toFixed(2)} img/s ETA ${formatDuration(eta)}${extra ? ` ${extra}` : ''}`;
  }

  tick(images: number, extra = ''): void {
    this.done += images;
    const now = Date.now();
    if (this.stream.isTTY) {
      this.stream.write(`\r\x1b[2K${this.line(extra)}`);
    } else if (now - this.lastPrint >= this.intervalMs) {
      this.stream.write(`${this.line(extra)}\n`);
      this.lastPrint = now;
    }
  }

  finish(extra = ''): void {
    this.stream.write(this.stream.isTTY ? `\r\x1b[2K${this.line(extra)}\n` : `${this.line(extra)}\n`);
  }

  get imagesPerSecond(): number {
    const secs = (Date.now() - this.start) / 1000;
    return secs > 0 ? this.done / secs : 0;
  }
}
