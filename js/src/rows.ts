/**
 * The rendered rows of a lane: the window view[before, before + shown.length) of its filtered entries, with
 * `before` entries above it and `after` below it that are not in the DOM.
 */
import { entryBefore } from "./store";
import type { Entry } from "./types";

export class RowWindow {
  private rows = new Map<Entry, HTMLElement>();
  shown: Entry[] = [];
  before = 0;
  after = 0;

  /** `top`: the lane's first child (the "show earlier" button); `build`: one entry's row. */
  constructor(
    private readonly lane: HTMLElement,
    private readonly top: HTMLElement,
    private readonly build: (e: Entry) => HTMLElement,
  ) {}

  /** Entries of the view: rendered, above and below the window. */
  count(): number {
    return this.before + this.shown.length + this.after;
  }

  row(e: Entry): HTMLElement | undefined {
    return this.rows.get(e);
  }

  private make(entries: Entry[]): DocumentFragment {
    const frag = document.createDocumentFragment();
    for (const e of entries) {
      const row = this.build(e);
      this.rows.set(e, row);
      frag.appendChild(row);
    }
    return frag;
  }

  /** Remove the rows of `entries` (they stay in `shown` until the caller filters it). */
  drop(entries: Entry[]): void {
    for (const e of entries) {
      this.rows.get(e)?.remove();
      this.rows.delete(e);
    }
  }

  /** Render view[start, end) as the lane's rows. */
  render(view: Entry[], start: number, end: number): void {
    this.shown = view.slice(start, end);
    this.before = start;
    this.after = view.length - end;
    this.rows = new Map();
    this.lane.replaceChildren(this.top, this.make(this.shown));
  }

  append(entries: Entry[]): void {
    this.lane.appendChild(this.make(entries));
    for (const e of entries) this.shown.push(e);
  }

  /** Render `entries`, the view's entries [start, first shown), above the window. */
  prepend(entries: Entry[], start: number): void {
    this.top.after(this.make(entries));
    this.shown = entries.concat(this.shown);
    this.before = start;
  }

  /** Keep only the newest `max` rows in the DOM. */
  trimTop(max: number): void {
    const extra = this.shown.length - max;
    if (extra <= 0) return;
    this.drop(this.shown.splice(0, extra));
    this.before += extra;
  }

  /** Keep only the oldest `max` rows in the DOM. */
  trimBottom(max: number): void {
    if (this.shown.length <= max) return;
    const dropped = this.shown.splice(max);
    this.drop(dropped);
    this.after += dropped.length;
  }

  /** Insert `e`, which sorts within the window (interleaved order), at its place. */
  insert(e: Entry): void {
    let lo = 0;
    let hi = this.shown.length; // first shown entry after e
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (entryBefore(this.shown[mid], e)) lo = mid + 1;
      else hi = mid;
    }
    const row = this.build(e);
    this.rows.set(e, row);
    this.rows.get(this.shown[lo])?.before(row);
    this.shown.splice(lo, 0, e);
  }
}
