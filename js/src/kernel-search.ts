/**
 * Search and first error in the lines this view does not hold. Under a flood the kernel sends only part of the
 * lines (skip markers stand for the rest) and the store keeps the newest of each site; the kernel's history still
 * has them. While a search or level filter is set, and for "first error", this asks the kernel (`search`
 * message, `flarenb/viewsearch.py`) and lists what it found below the lane: "N matching lines not shown here".
 * Clicking one shows where it belongs: the lane scrolls to the skip marker standing for it. Text only, never HTML.
 */
import type { AnyModel } from "@anywidget/types";
import { stripAnsi } from "./ansi";
import { button, el, setText } from "./dom";
import { buildRow, fmtCount, parseTs } from "./format";
import type { LaneWindow } from "./lanes";
import { ALL } from "./sites";
import { isErrorLine, type LogStore } from "./store";
import type { FoundLine, LineEntry, SearchRequest, SearchResult, WidgetModel } from "./types";
import { normLevel } from "./vocab";

/** ms after the last keystroke before the kernel is asked */
export const SEARCH_DELAY = 300;

let requests = 0;

export class KernelSearch {
  readonly panel = el("div", "flarenb-found", "flarenb-found");
  private readonly summary = el("div", "flarenb-found-summary", "flarenb-found-summary");
  private readonly list = el("div", "flarenb-found-lines", "flarenb-found-lines");
  /** the request whose answer this view waits for, and the local first error it must beat */
  private pending: { id: string; firstError: LineEntry | null } | null = null;
  private asked = "";
  private timer: ReturnType<typeof setTimeout> | null = null;
  private readonly stop: () => void;

  constructor(
    private readonly model: AnyModel<WidgetModel>,
    private readonly store: LogStore,
    private readonly lanes: LaneWindow,
  ) {
    const close = button("flarenb-button flarenb-found-close", "flarenb-found-close", "×", "Close these results");
    close.addEventListener("click", () => this.clear());
    const head = el("div", "flarenb-found-head");
    head.append(this.summary, close);
    this.panel.append(head, this.list);
    this.panel.hidden = true;
    this.stop = store.onSearchResult((r) => this.answered(r));
  }

  dispose(): void {
    this.stop();
    if (this.timer) clearTimeout(this.timer);
  }

  /** The lane's filter may have changed: ask the kernel (debounced) when it may hold more matching lines. */
  refresh(): void {
    const { query, minLevel } = this.lanes.filter;
    if (!query && !minLevel) return; // a cleared filter (e.g. by a jump) keeps the results shown
    const key = JSON.stringify([this.lanes.active, query, minLevel]);
    if (key === this.asked) return;
    this.asked = key;
    if (this.timer) clearTimeout(this.timer);
    if (!this.sites().some((s) => this.store.hasMissing(s))) return this.clear(key);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.ask(false, "Searching the kernel's copy of the lines not shown here…");
    }, SEARCH_DELAY);
  }

  /** After a local "first error" jump to `local` (null: none here): ask whether a line not shown came first. */
  firstError(local: LineEntry | null): boolean {
    if (!this.sites().some((s) => this.store.hasMissing(s))) return false;
    this.ask(true, "Asking the kernel for an earlier error in the lines not shown here…", local);
    return true;
  }

  clear(asked = ""): void {
    this.asked = asked;
    this.pending = null;
    this.panel.hidden = true;
    this.list.replaceChildren();
  }

  private sites(): string[] {
    const lane = this.lanes.active;
    return lane === ALL ? this.store.sites() : [lane];
  }

  private ask(firstError: boolean, status: string, local: LineEntry | null = null): void {
    const sites = this.sites();
    const { query, minLevel } = this.lanes.filter;
    const msg: SearchRequest = {
      kind: "search",
      request_id: `search-${++requests}-${Math.random().toString(36).slice(2, 8)}`,
      query: firstError ? "" : query,
      min_level: firstError ? null : minLevel,
      first_error: firstError,
      sites,
      held: Object.fromEntries(sites.map((s) => [s, this.store.heldRuns(s)])),
    };
    this.pending = { id: msg.request_id, firstError: local };
    this.model.send(msg);
    this.panel.hidden = false;
    this.panel.dataset.state = "pending";
    this.list.replaceChildren();
    setText(this.summary, status);
  }

  private answered(r: SearchResult): void {
    if (!this.pending || r.request_id !== this.pending.id) return; // another view's, or an older search
    const local = this.pending.firstError;
    this.pending = null;
    this.panel.dataset.state = r.error ? "error" : "done";
    const lines = (Array.isArray(r.lines) ? r.lines : []).filter((l) => Array.isArray(l) && !this.holds(l));
    if (r.first_error) return this.answeredFirstError(lines, local, r.dropped);
    const dropped = r.dropped ? `; ${fmtCount(r.dropped)} older lines left the kernel too (download them)` : "";
    if (r.error) setText(this.summary, `The kernel could not search: ${r.error}`);
    else if (!r.matches) setText(this.summary, `No other matching lines in the kernel's copy${dropped}.`);
    else {
      const listed = r.truncated ? `, first ${fmtCount(lines.length)} listed` : "";
      setText(this.summary, `${fmtCount(r.matches)} matching lines not shown here (from the kernel${listed})${dropped}`);
    }
    this.show(lines);
  }

  /** The earliest error the kernel found that this view does not hold, if it comes before `local`. */
  private answeredFirstError(lines: FoundLine[], local: LineEntry | null, dropped: number): void {
    const before = (l: FoundLine) =>
      !local ||
      (l[0] === local.site ? l[1] < local.seq : (parseTs(l[4]) ?? Infinity) < local.key);
    const earlier = lines.filter(before).sort((a, b) => (parseTs(a[4]) ?? Infinity) - (parseTs(b[4]) ?? Infinity));
    if (!earlier.length) {
      this.clear(this.asked);
      if (!local) {
        this.lanes.showNotice(
          dropped
            ? "No ERROR or traceback in the lines the kernel holds; older ones left it: download the complete log."
            : "No ERROR or traceback in this lane.",
        );
      }
      return;
    }
    setText(this.summary, "First error, in lines not shown here (from the kernel):");
    this.show(earlier.slice(0, 1));
    this.jump(earlier[0], this.list.firstElementChild as HTMLElement);
  }

  /** Whether the store holds this line (it arrived since the request). */
  private holds(l: FoundLine): boolean {
    return this.store.site(String(l[0])).some((e) => e.kind === "line" && e.seq === l[1]);
  }

  private show(lines: FoundLine[]): void {
    this.list.replaceChildren(
      ...lines.map((l) => {
        const row = buildRow(entryOf(l), true, this.lanes.filter.query);
        row.setAttribute("data-testid", "flarenb-found-line");
        row.classList.add("flarenb-found-line");
        row.tabIndex = 0;
        row.title = `${l[0]} line ${l[1]}${l[4] ? ` at ${l[4]}` : ""}: show where it belongs`;
        row.addEventListener("click", () => this.jump(l, row));
        return row;
      }),
    );
  }

  /** Show where `l` belongs: the skip marker standing for it, or say it is older than this view's lines. */
  private jump(l: FoundLine, row: HTMLElement): void {
    for (const old of this.list.querySelectorAll(".flarenb-current")) old.classList.remove("flarenb-current");
    row.classList.add("flarenb-current");
    const gap = this.store.gapAt(l[0], l[1]);
    if (this.lanes.active !== ALL && this.lanes.active !== l[0]) this.lanes.showLane(l[0]);
    if (gap) this.lanes.showEntry(gap);
    else this.lanes.showNotice(`Line ${l[1]} of ${l[0]} is older than the lines this view holds (shown below).`);
  }
}

/** A found line as a store entry, to render it like the lane's rows. */
function entryOf(l: FoundLine): LineEntry {
  const text = String(l[2] ?? "");
  const level = normLevel(l[3]);
  return {
    kind: "line",
    gid: 0,
    key: 0,
    site: String(l[0]),
    seq: Number(l[1]),
    text,
    plain: stripAnsi(text),
    level,
    ts: l[4] == null ? null : String(l[4]),
    isError: isErrorLine(level, stripAnsi(text)),
  };
}
