/**
 * The lane window: the active lane's log rows. Only a window of the lane's filtered entries is rendered (the
 * newest WINDOW while following, the newest FLOOD_ROWS under a flood); the store holds more ("show earlier", first
 * error render them on demand).
 * Store changes are applied once per animation frame. Follow/pause live here, and showing one entry (first error).
 */
import { el, setText } from "./dom";
import { LaneFilter } from "./filter";
import { buildRow, fmtCount } from "./format";
import { FrameBatch } from "./frames";
import { RowWindow } from "./rows";
import { ALL, laneId } from "./sites";
import { entryBefore, type LogStore } from "./store";
import type { Entry } from "./types";

const BOTTOM_SLACK = 4; // px: "at the bottom" tolerance
/** Rows rendered while following (the store holds more: "show earlier" renders them on demand). */
export const WINDOW = 1000;
/** Most rows a lane ever renders (paused, or after "show earlier"). */
export const MAX_ROWS = 2 * WINDOW;
/** A flush bringing more new rows than this while following is a flood: the lane then renders only the newest
 * FLOOD_ROWS, two screens of the default lane (the rest counted above the window). Each new row is laid out once
 * (even a `content-visibility: auto` one), so this bounds one frame's work however fast lines come. */
export const FLOOD_ROWS = 40;

/** What the rest of the view hears from the lane window. */
export interface LaneHooks {
  /** entries reached the lane (a new site, errors arriving or leaving the store) */
  entries(added: Entry[], evicted: Entry[]): void;
  /** another lane is active */
  laneChanged(): void;
  /** the window's counts, filter or follow state may have changed */
  status(): void;
}

export class LaneWindow {
  readonly element = el("div", "flarenb-lane");
  readonly notice = el("div", "flarenb-notice", "flarenb-evicted-notice");
  private readonly earlier = el("button", "flarenb-button flarenb-show-earlier", "flarenb-show-earlier");
  private readonly empty = el("div", "flarenb-empty", "flarenb-empty");
  readonly filter = new LaneFilter();
  private lane: string = ALL;
  private newLines = 0;
  private readonly follow = new Map<string, boolean>();
  private lastScrollTop = 0;
  /** The rendered window of the active lane's filtered entries, and how many are outside it. */
  private readonly win = new RowWindow(this.element, this.earlier, (e) =>
    buildRow(e, this.active === ALL, this.filter.query),
  );
  private readonly batch = new FrameBatch(() => this.flush(), 10 * WINDOW);
  private readonly unsubscribe: () => void;

  constructor(
    private readonly store: LogStore,
    private readonly hooks: LaneHooks,
  ) {
    this.element.setAttribute("role", "log");
    this.element.tabIndex = 0;
    this.element.addEventListener("scroll", () => this.onScroll());
    this.earlier.type = "button";
    this.earlier.addEventListener("click", () => this.showEarlier());
    this.notice.hidden = true;
    this.unsubscribe = store.subscribe((c) => this.batch.push(c));
  }

  dispose(): void {
    this.unsubscribe();
    this.batch.cancel();
  }

  /** The lane shown: ALL or a site. */
  get active(): string {
    return this.lane;
  }

  /** Lines that arrived while paused. */
  get unseen(): number {
    return this.newLines;
  }

  showLane(lane: string): void {
    if (lane === this.lane) return;
    this.lane = lane;
    this.hooks.laneChanged();
    this.renderLane();
  }

  following(): boolean {
    return this.follow.get(this.active) ?? true;
  }

  /** Lines of the filtered lane (rendered or not): with a search, every one matches (gaps are hidden). */
  count(): number {
    return this.win.count();
  }

  private visible(e: Entry): boolean {
    return (this.active === ALL || e.site === this.active) && this.filter.passes(e);
  }

  /** The active lane's entries that pass the level filter and the search, in view order. */
  private filtered(): Entry[] {
    const entries = this.active === ALL ? this.store.all() : this.store.site(this.active);
    return entries.filter((e) => this.visible(e));
  }

  /** Rebuild the active lane from the store (lane switch, filter or search change): the newest WINDOW rows. */
  renderLane(): void {
    const { added, evicted } = this.batch.take(); // the rebuilt lane shows them
    this.hooks.entries(added, evicted);
    this.element.setAttribute("data-testid", `flarenb-lane-${laneId(this.active)}`);
    this.element.dataset.lane = laneId(this.active);
    this.element.classList.toggle("flarenb-lane-all", this.active === ALL);
    const view = this.filtered();
    this.renderWindow(view, Math.max(0, view.length - WINDOW), view.length);
    this.newLines = 0;
    this.renderStatus();
    if (this.following()) this.scrollToBottom();
  }

  /** Render view[start, end) as the lane's rows. */
  private renderWindow(view: Entry[], start: number, end: number): void {
    this.win.render(view, start, end);
    if (view.length === 0) {
      const sites = this.active === ALL ? this.store.sites() : [this.active];
      const any = sites.some((s) => this.store.site(s).length > 0);
      this.empty.textContent = any ? "No line matches the filter." : "No lines yet.";
      this.element.appendChild(this.empty);
    }
  }

  /** Apply the pending store changes: one batch of DOM writes, then (following) one scroll. */
  flush(): void {
    const win = this.win;
    const { added, evicted } = this.batch.take();
    this.hooks.entries(added, evicted);
    const gone = new Set(evicted);
    const unannounced = evicted.length ? new Set(added) : gone;
    let removed = false;
    for (const e of evicted) {
      if (unannounced.has(e)) continue; // added and evicted within this frame: never counted
      if (win.row(e)) {
        win.drop([e]);
        removed = true;
      } else if (this.visible(e)) {
        if (win.before > 0 && !(win.shown.length && this.inOrder(win.shown[0], e))) win.before--;
        else if (win.after > 0) win.after--;
      }
    }
    if (removed) win.shown = win.shown.filter((e) => !gone.has(e));
    if (win.shown.length === 0 && win.after > 0) return this.renderLane(); // the window left the store

    let fresh = added.filter((e) => !gone.has(e) && this.visible(e));
    if (this.active === ALL && win.shown.length) fresh = this.placeInterleaved(fresh);
    let take = fresh;
    const keep = fresh.length > FLOOD_ROWS ? FLOOD_ROWS : WINDOW;
    if (this.following()) {
      take = fresh.slice(Math.max(0, fresh.length - keep)); // a flood or a hidden-tab backlog: only the tail
      win.before += fresh.length - take.length;
    } else {
      this.newLines += fresh.length;
      // paused: the window grows only while it reaches the tail, up to MAX_ROWS
      take = fresh.slice(0, win.after ? 0 : Math.max(0, MAX_ROWS - win.shown.length));
      win.after += fresh.length - take.length;
    }
    if (take.length) {
      this.empty.remove();
      win.append(take);
    }
    if (this.following()) win.trimTop(keep);
    this.renderStatus();
    if (this.following()) this.scrollToBottom();
  }

  /** Lane order: a site's own order, or the interleaved order of "All sites". */
  private inOrder(a: Entry, b: Entry): boolean {
    return this.active === ALL ? entryBefore(a, b) : a.gid < b.gid;
  }

  /**
   * "All sites": new lines that sort before the rendered window's last row (a site whose lines arrive later than
   * the others') take their place by time — counted above the window, or inserted among its rows, keeping the
   * reader's place while paused. Returns the entries that sort after the window, in order.
   */
  private placeInterleaved(fresh: Entry[]): Entry[] {
    const sorted = fresh.slice().sort((a, b) => (entryBefore(a, b) ? -1 : 1));
    const win = this.win;
    const last = win.shown[win.shown.length - 1];
    const tail = sorted.filter((e) => entryBefore(last, e));
    if (tail.length === sorted.length) return tail;
    this.keepPlace(() => {
      for (const e of sorted) {
        if (entryBefore(last, e)) break;
        if (entryBefore(e, win.shown[0])) win.before++;
        else win.insert(e);
      }
    });
    if (!this.following()) this.newLines += sorted.length - tail.length;
    return tail;
  }

  /** Run a DOM change above the reader's viewport without moving what they read (paused only). */
  private keepPlace(change: () => void): void {
    if (this.following()) return change();
    const top = this.element.getBoundingClientRect().top;
    const anchor = this.win.shown.map((e) => this.win.row(e)).find((r) => r && r.getBoundingClientRect().bottom > top);
    const y = anchor?.getBoundingClientRect().top ?? 0;
    change();
    if (anchor?.isConnected) this.element.scrollTop += anchor.getBoundingClientRect().top - y;
    this.lastScrollTop = this.element.scrollTop;
  }

  /** "Show earlier lines": render up to WINDOW more rows above the window, keeping the reader's place. */
  showEarlier(): void {
    if (this.batch.scheduled) this.flush();
    const win = this.win;
    if (!win.before) return;
    const view = this.filtered();
    const end = win.shown.length ? view.indexOf(win.shown[0]) : win.before;
    if (end < 0) return this.renderLane();
    const start = Math.max(0, end - WINDOW);
    const anchor = win.shown.length ? win.row(win.shown[0]) : undefined;
    const y = anchor?.getBoundingClientRect().top ?? 0;
    this.follow.set(this.active, false);
    win.prepend(view.slice(start, end), start);
    win.trimBottom(MAX_ROWS); // they come back with "follow"
    if (anchor) this.element.scrollTop += anchor.getBoundingClientRect().top - y;
    this.lastScrollTop = this.element.scrollTop;
    this.renderStatus();
  }

  /** Render a window around `target` unless it is rendered; its row (undefined if filtered out). */
  private reveal(target: Entry): HTMLElement | undefined {
    if (this.batch.scheduled) this.flush();
    if (!this.win.row(target)) {
      const view = this.filtered();
      const i = view.indexOf(target);
      if (i < 0) return undefined;
      const start = Math.max(0, Math.min(i - WINDOW / 10, view.length - WINDOW));
      this.renderWindow(view, start, Math.min(view.length, start + WINDOW));
      this.renderStatus();
    }
    return this.win.row(target);
  }

  private renderStatus(): void {
    const sites = this.active === ALL ? this.store.sites() : [this.active];
    const n = sites.reduce((sum, s) => sum + (this.store.evicted.get(s) ?? 0), 0);
    this.notice.hidden = n === 0;
    setText(this.notice, n ? `${fmtCount(n)} older lines left this view (download for the complete log)` : "");
    const before = this.win.before;
    this.earlier.hidden = before === 0;
    setText(this.earlier, `⋯ ${fmtCount(before)} earlier lines: show ${fmtCount(Math.min(before, WINDOW))} more`);
    this.hooks.status();
  }

  // ---------------------------------------------------------------- follow / pause
  setFollow(on: boolean): void {
    this.follow.set(this.active, on);
    if (on) {
      this.newLines = 0;
      if (this.win.after) this.renderLane(); // the window ends before the tail: show the tail
      this.win.trimTop(WINDOW);
      this.scrollToBottom();
    }
    this.renderStatus();
  }

  private scrollToBottom(): void {
    this.element.scrollTop = this.element.scrollHeight;
    this.lastScrollTop = this.element.scrollTop;
  }

  private onScroll(): void {
    const lane = this.element;
    const top = lane.scrollTop;
    const atBottom = top + lane.clientHeight >= lane.scrollHeight - BOTTOM_SLACK;
    if (atBottom) {
      if (!this.following()) this.setFollow(true);
    } else if (top < this.lastScrollTop && this.following()) {
      this.setFollow(false); // the user scrolled up: pause
    }
    this.lastScrollTop = top;
  }

  // ---------------------------------------------------------------- first error
  /** Show `target` (an entry of the active lane) as the current row, paused, clearing a filter that hides it. */
  showEntry(target: Entry): void {
    if (!this.visible(target)) {
      this.filter.clear(); // the toolbar's inputs follow (status hook)
      this.renderLane();
    }
    this.setFollow(false);
    const row = this.reveal(target); // rendered on demand if outside the window
    if (!row) return;
    for (const old of this.element.querySelectorAll(".flarenb-current")) {
      old.classList.remove("flarenb-current");
      old.removeAttribute("aria-current");
    }
    row.classList.add("flarenb-current");
    row.setAttribute("aria-current", "true");
    row.scrollIntoView?.({ block: "center" });
    this.lastScrollTop = this.element.scrollTop;
  }

  /** A message in the notice above the lane (until the next render of the lane's status). */
  showNotice(text: string): void {
    this.notice.hidden = false;
    this.notice.textContent = text;
  }
}
