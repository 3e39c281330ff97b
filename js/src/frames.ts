/** Work coalesced to one animation frame: store changes for a lane, a redraw of the metrics panel. */
import type { StoreChange } from "./store";

/** Runs `run` once in the next animation frame, however often it is scheduled before. */
export class FrameTask {
  private frame: { raf: number; timer: ReturnType<typeof setTimeout> } | null = null;

  constructor(private readonly run: () => void) {}

  get scheduled(): boolean {
    return this.frame !== null;
  }

  schedule(): void {
    if (this.frame) return;
    const run = () => {
      this.cancel();
      this.run();
    };
    // the timer covers hidden tabs, where animation frames stop
    this.frame = {
      raf: typeof requestAnimationFrame === "function" ? requestAnimationFrame(run) : 0,
      timer: setTimeout(run, 250),
    };
  }

  cancel(): void {
    if (!this.frame) return;
    if (typeof cancelAnimationFrame === "function") cancelAnimationFrame(this.frame.raf);
    clearTimeout(this.frame.timer);
    this.frame = null;
  }
}

/** Store changes arrive per kernel message; a lane applies them once per animation frame. */
export class FrameBatch {
  private pending: StoreChange = { added: [], evicted: [] };
  private readonly task: FrameTask;

  /** `run` applies the batch (it calls `take`); `limit`: more added entries than this apply at once. */
  constructor(
    private readonly run: () => void,
    private readonly limit: number,
  ) {
    this.task = new FrameTask(run);
  }

  get scheduled(): boolean {
    return this.task.scheduled;
  }

  push(change: StoreChange): void {
    for (const e of change.added) this.pending.added.push(e);
    for (const e of change.evicted) this.pending.evicted.push(e);
    // a throttled background tab must not pile up changes (they hold evicted entries): apply them now
    if (this.pending.added.length > this.limit) return this.run();
    this.task.schedule();
  }

  /** The changes so far (the scheduled frame is cancelled: the caller applies them). */
  take(): StoreChange {
    this.cancel();
    const change = this.pending;
    this.pending = { added: [], evicted: [] };
    return change;
  }

  cancel(): void {
    this.task.cancel();
  }
}
