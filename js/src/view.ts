/**
 * One rendered LogView. Every view-only control (lanes, level filter, search, follow/pause,
 * jump to first error, browser-side save) runs entirely here, so it works while the kernel is
 * busy. Only "Download" talks to the kernel.
 */
import type { AnyModel } from "@anywidget/types";
import { buildRow, elapsedText, fmtCount, siteStateLabel, statusCategory } from "./format";
import { entryBefore, type LogStore, type StoreChange } from "./store";
import type { Entry, Level, LineEntry, WidgetModel } from "./types";
import { isTerminal, LEVEL_RANK, LEVELS, VIEW_STATES } from "./vocab";

export const ALL = "\u0000all";
const BOTTOM_SLACK = 4; // px: "at the bottom" tolerance
/** Rows rendered while following (the store holds more: "show earlier" renders them on demand). */
export const WINDOW = 1000;
/** Most rows a lane ever renders (paused, or after "show earlier"). */
export const MAX_ROWS = 2 * WINDOW;

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  cls: string,
  testid?: string,
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (testid) node.setAttribute("data-testid", testid);
  return node;
}

const laneId = (lane: string): string => (lane === ALL ? "all-sites" : lane);

/** Set text only when it changed: an identical write still invalidates layout. */
function setText(node: HTMLElement, text: string): void {
  if (node.textContent !== text) node.textContent = text;
}

export class LogViewUI {
  readonly root: HTMLDivElement;
  private readonly jobName = el("span", "flarenb-job-name", "flarenb-job-name");
  private readonly jobId = el("span", "flarenb-job-id", "flarenb-job-id");
  private readonly status = el("span", "flarenb-status", "flarenb-status");
  private readonly elapsed = el("span", "flarenb-elapsed", "flarenb-elapsed");
  private readonly problem = el("span", "flarenb-problem", "flarenb-problem");
  private readonly siteStates = el("ul", "flarenb-site-states", "flarenb-site-states");
  private readonly tabs = el("div", "flarenb-tabs", "flarenb-lane-tabs");
  private readonly levelSelect = el("select", "flarenb-level-filter", "flarenb-level-filter");
  private readonly search = el("input", "flarenb-search", "flarenb-search");
  private readonly searchCount = el("span", "flarenb-search-count", "flarenb-search-count");
  private readonly jumpError = el("button", "flarenb-button", "flarenb-jump-error");
  private readonly followBtn = el("button", "flarenb-button flarenb-follow", "flarenb-follow");
  private readonly downloadBtn = el("button", "flarenb-button", "flarenb-download");
  private readonly browserSaveBtn = el("button", "flarenb-button", "flarenb-download-browser");
  private readonly notice = el("div", "flarenb-notice", "flarenb-evicted-notice");
  private readonly lane = el("div", "flarenb-lane");
  private readonly earlier = el("button", "flarenb-button flarenb-show-earlier", "flarenb-show-earlier");
  private readonly downloadResult = el("div", "flarenb-download-result", "flarenb-download-result");

  active: string = ALL;
  private minLevel: Level | null = null;
  private query = "";
  private readonly follow = new Map<string, boolean>();
  private unseen = 0;
  private lastScrollTop = 0;
  /** The rendered window of the active lane's filtered entries, and how many are outside it. */
  private rows = new Map<Entry, HTMLElement>();
  private shown: Entry[] = [];
  private before = 0;
  private after = 0;
  /** Store changes waiting for the next animation frame. */
  private pending: StoreChange = { added: [], evicted: [] };
  private frame: { raf: number; timer: ReturnType<typeof setTimeout> } | null = null;
  /** which sites have a "first error" button (re-render the site states only when it changes) */
  private errorKey = "";
  private needle = "";
  private readonly empty = el("div", "flarenb-empty", "flarenb-empty");
  private pendingDownload: string | null = null;
  private readonly disposers: Array<() => void> = [];

  constructor(
    private readonly model: AnyModel<WidgetModel>,
    private readonly store: LogStore,
    private readonly now: () => number = () => Date.now() / 1000,
  ) {
    this.root = el("div", "flarenb-logview", "flarenb-logview");
    this.build();
    const listen = (event: string, fn: () => void) => {
      model.on(event, fn);
      this.disposers.push(() => model.off(event, fn));
    };
    listen("change:job_id", () => this.renderHeader());
    listen("change:job_name", () => this.renderHeader());
    listen("change:status", () => this.renderHeader());
    listen("change:start_ts", () => this.renderHeader());
    listen("change:end_ts", () => this.renderHeader());
    listen("change:duration", () => this.renderHeader());
    listen("change:live", () => this.renderHeader());
    listen("change:problem", () => this.renderHeader());
    listen("change:site_states", () => this.renderSiteStates());
    listen("change:sites", () => {
      this.renderSiteStates();
      this.renderTabs();
    });
    listen("change:downloads", () => this.renderDownloads());
    this.disposers.push(store.subscribe((c) => this.onStoreChange(c)));
    this.disposers.push(() => this.cancelFrame());
    this.disposers.push(
      store.onDownload((r) => {
        if (r.request_id !== null && r.request_id !== this.pendingDownload) return;
        this.pendingDownload = null;
        this.showDownload(r.paths, r.error);
      }),
    );
    const timer = setInterval(() => this.tick(), 1000);
    this.disposers.push(() => clearInterval(timer));
    this.renderHeader();
    this.renderSiteStates();
    this.renderTabs();
    this.renderDownloads();
    this.renderLane();
  }

  dispose(): void {
    for (const d of this.disposers.splice(0)) d();
    this.root.remove();
  }

  // ---------------------------------------------------------------- structure
  private build(): void {
    const header = el("div", "flarenb-header", "flarenb-header");
    const title = el("div", "flarenb-title");
    title.append(this.jobName, this.jobId, this.status, this.elapsed, this.problem);
    header.append(title, this.siteStates);

    const toolbar = el("div", "flarenb-toolbar", "flarenb-toolbar");
    this.tabs.setAttribute("role", "tablist");
    this.levelSelect.setAttribute("aria-label", "Minimum level");
    for (const value of ["", ...LEVELS]) {
      const opt = document.createElement("option");
      opt.value = value;
      opt.textContent = value ? `≥ ${value}` : "All levels";
      this.levelSelect.appendChild(opt);
    }
    this.levelSelect.addEventListener("change", () => {
      this.minLevel = (this.levelSelect.value || null) as Level | null;
      this.renderLane();
    });
    this.search.type = "search";
    this.search.placeholder = "Search";
    this.search.setAttribute("aria-label", "Search the log");
    this.search.addEventListener("input", () => {
      this.query = this.search.value;
      this.needle = this.query.toLowerCase();
      this.renderLane();
    });
    this.jumpError.type = "button";
    this.jumpError.textContent = "First error";
    this.jumpError.title = "Jump to the first ERROR or traceback of this lane";
    this.jumpError.addEventListener("click", () => this.jumpToFirstError(this.active));
    this.followBtn.type = "button";
    this.followBtn.addEventListener("click", () => this.setFollow(true));
    this.downloadBtn.type = "button";
    this.downloadBtn.textContent = "Download";
    this.downloadBtn.title = "Ask the kernel to save the complete per-site logs beside the notebook";
    this.downloadBtn.addEventListener("click", () => this.requestDownload());
    this.browserSaveBtn.type = "button";
    this.browserSaveBtn.textContent = "Save from browser";
    this.browserSaveBtn.title = "Save the lines this view holds now (works while the kernel is busy)";
    this.browserSaveBtn.addEventListener("click", () => this.saveFromBrowser());
    const controls = el("div", "flarenb-controls");
    controls.append(
      this.levelSelect,
      this.search,
      this.searchCount,
      this.jumpError,
      this.followBtn,
      this.downloadBtn,
      this.browserSaveBtn,
    );
    toolbar.append(this.tabs, controls);

    this.lane.setAttribute("role", "log");
    this.lane.tabIndex = 0;
    this.lane.addEventListener("scroll", () => this.onScroll());
    this.earlier.type = "button";
    this.earlier.addEventListener("click", () => this.showEarlier());
    this.notice.hidden = true;
    this.downloadResult.hidden = true;
    this.root.append(header, toolbar, this.notice, this.lane, this.downloadResult);
  }

  // ---------------------------------------------------------------- header
  private renderHeader(): void {
    const m = this.model;
    this.jobName.textContent = m.get("job_name") || "";
    this.jobName.hidden = !m.get("job_name");
    this.jobId.textContent = m.get("job_id") || "";
    const status = m.get("status") || "";
    this.status.textContent = status;
    this.status.dataset.status = statusCategory(status);
    this.root.dataset.status = statusCategory(status);
    this.root.classList.toggle("flarenb-finished", isTerminal(status) || !m.get("live"));
    const problem = m.get("problem") || "";
    this.problem.textContent = problem; // text, never HTML
    this.problem.hidden = problem === "";
    this.renderElapsed();
  }

  private renderElapsed(): void {
    const m = this.model;
    const text = elapsedText(m.get("status") || "", m.get("start_ts"), m.get("end_ts"), m.get("duration"), this.now());
    setText(this.elapsed, text);
    this.elapsed.hidden = this.elapsed.textContent === "";
  }

  private renderSiteStates(): void {
    const states = this.model.get("site_states") ?? {};
    const now = this.now();
    this.siteStates.replaceChildren();
    this.errorKey = this.errorSites();
    for (const site of this.siteList()) {
      const st = states[site];
      const item = el("li", "flarenb-site-state", `flarenb-site-state-${site}`);
      item.dataset.state = st?.state ?? VIEW_STATES.SILENT;
      const name = el("span", "flarenb-site-name");
      name.textContent = site;
      const label = el("span", "flarenb-site-label");
      label.textContent = siteStateLabel(st, now);
      item.append(name, label);
      if (this.hasErrors(site)) {
        const btn = el("button", "flarenb-button flarenb-first-error", `flarenb-first-error-${site}`);
        btn.type = "button";
        btn.textContent = "⚠ first error";
        btn.addEventListener("click", () => this.jumpToFirstError(site));
        item.appendChild(btn);
      }
      this.siteStates.appendChild(item);
    }
  }

  private hasErrors(site: string): boolean {
    return this.store.errorEvicted.has(site) || this.store.firstError(site) !== null;
  }

  private errorSites(): string {
    return this.siteList().map((s) => (this.hasErrors(s) ? "1" : "0")).join("");
  }

  private tick(): void {
    const status = this.model.get("status") || "";
    if (this.model.get("end_ts") == null && !isTerminal(status)) this.renderElapsed();
    const states = this.model.get("site_states") ?? {};
    if (Object.values(states).some((s) => s && s.state === VIEW_STATES.QUIET)) this.renderSiteStates();
  }

  private siteList(): string[] {
    const sites = [...(this.model.get("sites") ?? [])];
    for (const s of this.store.sites()) if (!sites.includes(s)) sites.push(s);
    return sites;
  }

  // ---------------------------------------------------------------- lanes
  private renderTabs(): void {
    this.tabs.replaceChildren();
    for (const lane of [ALL, ...this.siteList()]) {
      const tab = el("button", "flarenb-tab", `flarenb-lane-tab-${laneId(lane)}`);
      tab.type = "button";
      tab.setAttribute("role", "tab");
      tab.textContent = lane === ALL ? "All sites" : lane;
      tab.setAttribute("aria-selected", String(lane === this.active));
      tab.addEventListener("click", () => this.showLane(lane));
      this.tabs.appendChild(tab);
    }
  }

  showLane(lane: string): void {
    if (lane === this.active) return;
    this.active = lane;
    this.renderTabs();
    this.renderLane();
  }

  private following(): boolean {
    return this.follow.get(this.active) ?? true;
  }

  private visible(e: Entry): boolean {
    if (this.active !== ALL && e.site !== this.active) return false;
    if (e.kind === "gap") return !this.query && !this.minLevel;
    if (this.minLevel) {
      const rank = e.level ? LEVEL_RANK[e.level] : e.isError ? LEVEL_RANK.ERROR : 0;
      if (rank < LEVEL_RANK[this.minLevel]) return false;
    }
    if (this.query && !e.plain.toLowerCase().includes(this.needle)) return false;
    return true;
  }

  /** The active lane's entries that pass the level filter and the search, in view order. */
  private filtered(): Entry[] {
    const entries = this.active === ALL ? this.store.all() : this.store.site(this.active);
    return entries.filter((e) => this.visible(e));
  }

  private makeRows(entries: Entry[]): DocumentFragment {
    const frag = document.createDocumentFragment();
    for (const e of entries) {
      const row = buildRow(e, this.active === ALL, this.query);
      this.rows.set(e, row);
      frag.appendChild(row);
    }
    return frag;
  }

  private dropRows(entries: Entry[]): void {
    for (const e of entries) {
      this.rows.get(e)?.remove();
      this.rows.delete(e);
    }
  }

  /**
   * Rebuild the active lane from the store (lane switch, filter or search change). Only a window
   * of rows is rendered (the newest WINDOW); the store holds more ("show earlier", first error).
   */
  renderLane(): void {
    const { added, evicted } = this.takePending(); // the rebuilt lane shows them
    this.siteChanges(added, evicted);
    this.lane.setAttribute("data-testid", `flarenb-lane-${laneId(this.active)}`);
    this.lane.dataset.lane = laneId(this.active);
    this.lane.classList.toggle("flarenb-lane-all", this.active === ALL);
    const view = this.filtered();
    this.renderWindow(view, Math.max(0, view.length - WINDOW), view.length);
    this.unseen = 0;
    this.renderStatus();
    if (this.following()) this.scrollToBottom();
  }

  /** Render view[start, end) as the lane's rows. */
  private renderWindow(view: Entry[], start: number, end: number): void {
    this.shown = view.slice(start, end);
    this.before = start;
    this.after = view.length - end;
    this.rows = new Map();
    this.lane.replaceChildren(this.earlier, this.makeRows(this.shown));
    if (view.length === 0) {
      const sites = this.active === ALL ? this.store.sites() : [this.active];
      const any = sites.some((s) => this.store.site(s).length > 0);
      this.empty.textContent = any ? "No line matches the filter." : "No lines yet.";
      this.lane.appendChild(this.empty);
    }
  }

  /** Store changes arrive per kernel message; the DOM is updated once per animation frame. */
  private onStoreChange(change: StoreChange): void {
    for (const e of change.added) this.pending.added.push(e);
    for (const e of change.evicted) this.pending.evicted.push(e);
    // a throttled background tab must not pile up changes (they hold evicted entries): apply them now
    if (this.pending.added.length > 10 * WINDOW) return this.flush();
    if (this.frame) return;
    const run = () => this.flush();
    // the timer covers hidden tabs, where animation frames stop
    this.frame = {
      raf: typeof requestAnimationFrame === "function" ? requestAnimationFrame(run) : 0,
      timer: setTimeout(run, 250),
    };
  }

  private cancelFrame(): void {
    if (!this.frame) return;
    if (typeof cancelAnimationFrame === "function") cancelAnimationFrame(this.frame.raf);
    clearTimeout(this.frame.timer);
    this.frame = null;
  }

  /** Apply the pending store changes: one batch of DOM writes, then (following) one scroll. */
  flush(): void {
    const { added, evicted } = this.takePending();
    this.siteChanges(added, evicted);
    const gone = new Set(evicted);
    const unannounced = evicted.length ? new Set(added) : gone;
    let removed = false;
    for (const e of evicted) {
      if (unannounced.has(e)) continue; // added and evicted within this frame: never counted
      if (this.rows.has(e)) {
        this.dropRows([e]);
        removed = true;
      } else if (this.visible(e)) {
        if (this.before > 0 && !(this.shown.length && this.inOrder(this.shown[0], e))) this.before--;
        else if (this.after > 0) this.after--;
      }
    }
    if (removed) this.shown = this.shown.filter((e) => !gone.has(e));
    if (this.shown.length === 0 && this.after > 0) return this.renderLane(); // the window left the store

    let fresh = added.filter((e) => !gone.has(e) && this.visible(e));
    if (this.active === ALL && this.shown.length) fresh = this.placeInterleaved(fresh);
    let take = fresh;
    if (this.following()) {
      take = fresh.slice(Math.max(0, fresh.length - WINDOW)); // a long hidden-tab backlog: only the tail
      this.before += fresh.length - take.length;
    } else {
      this.unseen += fresh.length;
      // paused: the window grows only while it reaches the tail, up to MAX_ROWS
      take = fresh.slice(0, this.after ? 0 : Math.max(0, MAX_ROWS - this.shown.length));
      this.after += fresh.length - take.length;
    }
    if (take.length) {
      this.empty.remove();
      this.lane.appendChild(this.makeRows(take));
      for (const e of take) this.shown.push(e);
    }
    if (this.following()) this.trimTop();
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
    const last = this.shown[this.shown.length - 1];
    const tail = sorted.filter((e) => entryBefore(last, e));
    if (tail.length === sorted.length) return tail;
    this.keepPlace(() => {
      for (const e of sorted) {
        if (entryBefore(last, e)) break;
        if (entryBefore(e, this.shown[0])) {
          this.before++;
          continue;
        }
        let lo = 0;
        let hi = this.shown.length; // first shown entry after e
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if (entryBefore(this.shown[mid], e)) lo = mid + 1;
          else hi = mid;
        }
        const row = buildRow(e, true, this.query);
        this.rows.set(e, row);
        this.rows.get(this.shown[lo])?.before(row);
        this.shown.splice(lo, 0, e);
      }
    });
    if (!this.following()) this.unseen += sorted.length - tail.length;
    return tail;
  }

  /** Run a DOM change above the reader's viewport without moving what they read (paused only). */
  private keepPlace(change: () => void): void {
    if (this.following()) return change();
    const top = this.lane.getBoundingClientRect().top;
    const anchor = this.shown.map((e) => this.rows.get(e)).find((r) => r && r.getBoundingClientRect().bottom > top);
    const y = anchor?.getBoundingClientRect().top ?? 0;
    change();
    if (anchor?.isConnected) this.lane.scrollTop += anchor.getBoundingClientRect().top - y;
    this.lastScrollTop = this.lane.scrollTop;
  }

  private takePending(): StoreChange {
    this.cancelFrame();
    const change = this.pending;
    this.pending = { added: [], evicted: [] };
    return change;
  }

  /** New sites get a tab; the header's "first error" buttons follow errors arriving and leaving. */
  private siteChanges(added: Entry[], evicted: Entry[]): void {
    const sites = this.model.get("sites") ?? [];
    if (added.some((e) => !sites.includes(e.site))) this.renderTabs();
    const errors = evicted.length || added.some((e) => e.kind === "line" && e.isError);
    if (errors && this.errorSites() !== this.errorKey) this.renderSiteStates();
  }

  /** Following: keep only the newest WINDOW rows in the DOM. */
  private trimTop(): void {
    const extra = this.shown.length - WINDOW;
    if (extra <= 0) return;
    this.dropRows(this.shown.splice(0, extra));
    this.before += extra;
  }

  /** "Show earlier lines": render up to WINDOW more rows above the window, keeping the reader's place. */
  showEarlier(): void {
    if (this.frame) this.flush();
    if (!this.before) return;
    const view = this.filtered();
    const end = this.shown.length ? view.indexOf(this.shown[0]) : this.before;
    if (end < 0) return this.renderLane();
    const start = Math.max(0, end - WINDOW);
    const add = view.slice(start, end);
    const anchor = this.shown.length ? this.rows.get(this.shown[0]) : undefined;
    const y = anchor?.getBoundingClientRect().top ?? 0;
    this.follow.set(this.active, false);
    this.earlier.after(this.makeRows(add));
    this.shown = add.concat(this.shown);
    this.before = start;
    if (this.shown.length > MAX_ROWS) {
      const dropped = this.shown.splice(MAX_ROWS);
      this.dropRows(dropped); // they come back with "follow"
      this.after += dropped.length;
    }
    if (anchor) this.lane.scrollTop += anchor.getBoundingClientRect().top - y;
    this.lastScrollTop = this.lane.scrollTop;
    this.renderStatus();
  }

  /** Render a window around `target` unless it is rendered; its row (undefined if filtered out). */
  private reveal(target: Entry): HTMLElement | undefined {
    if (this.frame) this.flush();
    if (!this.rows.has(target)) {
      const view = this.filtered();
      const i = view.indexOf(target);
      if (i < 0) return undefined;
      const start = Math.max(0, Math.min(i - WINDOW / 10, view.length - WINDOW));
      this.renderWindow(view, start, Math.min(view.length, start + WINDOW));
      this.renderStatus();
    }
    return this.rows.get(target);
  }

  private renderStatus(): void {
    this.renderSearchCount();
    this.renderNotice();
    this.renderFollow();
    this.earlier.hidden = this.before === 0;
    setText(
      this.earlier,
      `⋯ ${fmtCount(this.before)} earlier lines: show ${fmtCount(Math.min(this.before, WINDOW))} more`,
    );
  }

  private renderNotice(): void {
    const sites = this.active === ALL ? this.store.sites() : [this.active];
    const n = sites.reduce((sum, s) => sum + (this.store.evicted.get(s) ?? 0), 0);
    this.notice.hidden = n === 0;
    setText(this.notice, n ? `${fmtCount(n)} older lines left this view (download for the complete log)` : "");
  }

  private renderSearchCount(): void {
    // with a search, every entry of the view is a matching line (gap markers are hidden)
    const n = this.before + this.shown.length + this.after;
    setText(this.searchCount, this.query ? `${fmtCount(n)} matching lines` : "");
  }

  // ---------------------------------------------------------------- follow / pause
  private renderFollow(): void {
    const on = this.following();
    if (this.followBtn.getAttribute("aria-pressed") !== String(on)) {
      this.followBtn.setAttribute("aria-pressed", String(on));
    }
    setText(
      this.followBtn,
      on ? "Following" : this.unseen ? `Paused: follow (${fmtCount(this.unseen)} new)` : "Paused: follow",
    );
    this.root.classList.toggle("flarenb-paused", !on);
  }

  setFollow(on: boolean): void {
    this.follow.set(this.active, on);
    if (on) {
      this.unseen = 0;
      if (this.after) this.renderLane(); // the window ends before the tail: show the tail
      this.trimTop();
      this.scrollToBottom();
    }
    this.renderStatus();
  }

  private scrollToBottom(): void {
    this.lane.scrollTop = this.lane.scrollHeight;
    this.lastScrollTop = this.lane.scrollTop;
  }

  private onScroll(): void {
    const lane = this.lane;
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
  jumpToFirstError(lane: string): void {
    let target: LineEntry | null = null;
    const sites = lane === ALL ? this.store.sites() : [lane];
    for (const s of sites) {
      const e = this.store.firstError(s);
      if (e && (!target || entryBefore(e, target))) target = e;
    }
    if (lane !== ALL && lane !== this.active) this.showLane(lane);
    if (!target) {
      const gone = sites.some((s) => this.store.errorEvicted.has(s));
      this.showNotice(
        gone
          ? "The first error left this view: download the complete log."
          : "No ERROR or traceback in this lane.",
      );
      return;
    }
    if (!this.visible(target)) {
      this.minLevel = null;
      this.levelSelect.value = "";
      this.query = "";
      this.needle = "";
      this.search.value = "";
      this.renderLane();
    }
    this.setFollow(false);
    const row = this.reveal(target); // rendered on demand if outside the window
    if (!row) return;
    for (const old of this.lane.querySelectorAll(".flarenb-current")) {
      old.classList.remove("flarenb-current");
      old.removeAttribute("aria-current");
    }
    row.classList.add("flarenb-current");
    row.setAttribute("aria-current", "true");
    row.scrollIntoView?.({ block: "center" });
    this.lastScrollTop = this.lane.scrollTop;
  }

  private showNotice(text: string): void {
    this.notice.hidden = false;
    this.notice.textContent = text;
  }

  // ---------------------------------------------------------------- downloads
  private requestDownload(): void {
    const id = `dl-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    this.pendingDownload = id;
    this.model.send({ kind: "download", request_id: id });
    this.downloadResult.hidden = false;
    this.downloadResult.dataset.state = "pending";
    this.downloadResult.textContent =
      "Asking the kernel to write the logs beside the notebook… (this waits while the kernel is " +
      "busy; “Save from browser” saves the lines shown here right away)";
  }

  private renderDownloads(): void {
    const d = this.model.get("downloads") ?? {};
    if (!d.paths?.length && !d.error) return;
    this.showDownload(d.paths ?? [], d.error ?? null);
  }

  private showDownload(paths: string[], error: string | null): void {
    this.downloadResult.hidden = false;
    this.downloadResult.replaceChildren();
    this.downloadResult.dataset.state = error ? "error" : "done";
    const head = el("div", "");
    head.textContent = error ? `Download failed: ${error}` : "Logs saved beside the notebook:";
    this.downloadResult.appendChild(head);
    if (!error) {
      const list = el("ul", "");
      for (const p of paths) {
        const li = el("li", "flarenb-download-path");
        const code = el("code", "");
        code.textContent = p;
        li.appendChild(code);
        list.appendChild(li);
      }
      this.downloadResult.appendChild(list);
    }
  }

  /** The lines of the active lane as a text file (what `Save from browser` saves). */
  browserLogText(): { name: string; text: string } {
    const job = this.model.get("job_id") || "job";
    const all = this.active === ALL;
    const sites = all ? this.store.sites() : [this.active];
    const evicted = sites.reduce((n, s) => n + (this.store.evicted.get(s) ?? 0), 0);
    const out: string[] = [];
    if (evicted) out.push(`# ${evicted} older lines left the browser; use Download for the complete log`);
    for (const e of all ? this.store.all() : this.store.site(this.active)) {
      const prefix = all ? `[${e.site}] ` : "";
      out.push(
        e.kind === "line"
          ? prefix + e.plain
          : `${prefix}# ${e.count} lines ${e.reason === "skipped" ? "skipped" : "not received"} here`,
      );
    }
    const safe = (s: string) => s.replace(/[^A-Za-z0-9._-]/g, "_");
    return { name: `${safe(job)}_${all ? "all-sites" : safe(this.active)}.log`, text: out.join("\n") + "\n" };
  }

  private saveFromBrowser(): void {
    const { name, text } = this.browserLogText();
    const url = URL.createObjectURL(new Blob([text], { type: "text/plain;charset=utf-8" }));
    const a = document.createElement("a");
    a.href = url;
    a.download = name;
    a.style.display = "none";
    this.root.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }
}
