/**
 * The per-model line store. It lives as long as the model (anywidget's `initialize`), so lines
 * keep accumulating while no view is rendered and a second view or a lane switch shows them all.
 * Memory is bounded: at most `cap` entries per site; older ones "leave this view" (counted).
 */
import type { AnyModel } from "@anywidget/types";
import { stripAnsi } from "./ansi";
import { parseTs } from "./format";
import type {
  Entry,
  GapEntry,
  KernelMsg,
  Level,
  LineEntry,
  SearchResult,
  WidgetModel,
  WireItem,
  WireLine,
} from "./types";
import { normLevel } from "./vocab";

export interface StoreChange {
  added: Entry[];
  evicted: Entry[];
}

export interface DownloadResult {
  request_id: string | null;
  paths: string[];
  error: string | null;
}

const TRACEBACK = /Traceback \(most recent call last\)/;
export const DEFAULT_CAP = 5000;

/**
 * Interleaved ("All sites") order: by timestamp, ties in arrival order. Each site's entries are already in this
 * order (an entry's key is never below its predecessor's), so a site's own order is never changed.
 */
export function entryBefore(a: Entry, b: Entry): boolean {
  return a.key < b.key || (a.key === b.key && a.gid < b.gid);
}

export function isErrorLine(level: Level | null, plain: string): boolean {
  return level === "ERROR" || level === "CRITICAL" || TRACEBACK.test(plain);
}

export class LogStore {
  readonly entries = new Map<string, Entry[]>();
  readonly lastSeq = new Map<string, number>();
  /** the interleaving key of each site's last entry */
  private readonly lastKey = new Map<string, number>();
  /** entries that left this view because of the per-site cap */
  readonly evicted = new Map<string, number>();
  /** sites whose first error left this view */
  readonly errorEvicted = new Set<string>();
  /** lines of each site this view never received (skip markers and holes), evicted or not */
  readonly gapLines = new Map<string, number>();
  cap: number;
  private gid = 0;
  /** gid before the change being built: entries above it are not announced yet */
  private changeStart = 0;
  private readonly listeners = new Set<(change: StoreChange) => void>();
  private readonly downloadListeners = new Set<(result: DownloadResult) => void>();
  private readonly searchListeners = new Set<(result: SearchResult) => void>();

  constructor(cap: number = DEFAULT_CAP) {
    this.cap = Math.max(1, cap);
  }

  subscribe(fn: (change: StoreChange) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  onDownload(fn: (result: DownloadResult) => void): () => void {
    this.downloadListeners.add(fn);
    return () => this.downloadListeners.delete(fn);
  }

  /** The kernel's answers to `search` requests (`kernel-search.ts`). */
  onSearchResult(fn: (result: SearchResult) => void): () => void {
    this.searchListeners.add(fn);
    return () => this.searchListeners.delete(fn);
  }

  /** Whether lines of `site` are not in this view (skipped, not received or evicted): the kernel may have them. */
  hasMissing(site: string): boolean {
    return (this.gapLines.get(site) ?? 0) + (this.evicted.get(site) ?? 0) > 0;
  }

  /** The runs [first, last] of consecutive seqs of the lines of `site` this view holds (at most `max`). */
  heldRuns(site: string, max = 5000): Array<[number, number]> {
    const runs: Array<[number, number]> = [];
    for (const e of this.site(site)) {
      if (e.kind !== "line") continue;
      const run = runs[runs.length - 1];
      if (run && e.seq === run[1] + 1) run[1] = e.seq;
      else if (runs.length < max) runs.push([e.seq, e.seq]);
      else break;
    }
    return runs;
  }

  /** The gap marker of `site` that stands for the line `seq`, if it is still in this view. */
  gapAt(site: string, seq: number): GapEntry | null {
    for (const e of this.site(site)) if (e.kind === "gap" && e.first <= seq && seq <= e.last) return e;
    return null;
  }

  sites(): string[] {
    return [...this.entries.keys()];
  }

  site(site: string): Entry[] {
    return this.entries.get(site) ?? [];
  }

  /**
   * Entries of every site interleaved by timestamp (k-way merge with `entryBefore`): equal times keep their
   * arrival order, and a line without a timestamp stays right after its predecessor of the same site.
   */
  all(): Entry[] {
    const lists = [...this.entries.values()].filter((l) => l.length > 0);
    if (lists.length === 1) return lists[0].slice();
    const idx = lists.map(() => 0);
    const out: Entry[] = [];
    for (;;) {
      let best = -1;
      for (let i = 0; i < lists.length; i++) {
        if (idx[i] < lists[i].length && (best < 0 || entryBefore(lists[i][idx[i]], lists[best][idx[best]]))) {
          best = i;
        }
      }
      if (best < 0) return out;
      out.push(lists[best][idx[best]++]);
    }
  }

  firstError(site: string): LineEntry | null {
    for (const e of this.site(site)) if (e.kind === "line" && e.isError) return e;
    return null;
  }

  /** A kernel `lines` message. */
  ingest(sites: Record<string, WireItem[]>): void {
    const change: StoreChange = { added: [], evicted: [] };
    this.changeStart = this.gid;
    for (const [site, items] of Object.entries(sites)) {
      if (!Array.isArray(items)) continue;
      for (const item of items) {
        if (Array.isArray(item)) this.addLine(site, item, change);
        else if (item && typeof item === "object") this.addSkip(site, item.first, item.last, change);
      }
      this.evict(site, change);
    }
    this.emit(change);
  }

  /** The `snapshot` trait: fills in whatever this store has not seen (e.g. a view opened late). */
  mergeSnapshot(snapshot: Record<string, WireLine[]> | null | undefined): void {
    if (!snapshot) return;
    const change: StoreChange = { added: [], evicted: [] };
    this.changeStart = this.gid;
    for (const [site, lines] of Object.entries(snapshot)) {
      if (!Array.isArray(lines)) continue;
      for (const line of lines) if (Array.isArray(line)) this.addLine(site, line, change, "missed");
      this.evict(site, change);
    }
    this.emit(change);
  }

  setCap(cap: number): void {
    this.cap = Math.max(1, cap || DEFAULT_CAP);
    const change: StoreChange = { added: [], evicted: [] };
    this.changeStart = this.gid;
    for (const site of this.entries.keys()) this.evict(site, change);
    this.emit(change);
  }

  handleMessage(msg: KernelMsg): void {
    if (!msg || typeof msg !== "object") return;
    if (msg.kind === "lines") this.ingest(msg.sites ?? {});
    else if (msg.kind === "download_result") {
      const result: DownloadResult = {
        request_id: msg.request_id ?? null,
        paths: Array.isArray(msg.paths) ? msg.paths.map(String) : [],
        error: msg.error ?? null,
      };
      for (const fn of this.downloadListeners) fn(result);
    } else if (msg.kind === "search_result") {
      for (const fn of this.searchListeners) fn(msg);
    }
  }

  private list(site: string): Entry[] {
    let list = this.entries.get(site);
    if (!list) {
      list = [];
      this.entries.set(site, list);
    }
    return list;
  }

  private addLine(
    site: string,
    wire: WireLine,
    change: StoreChange,
    gapReason: GapEntry["reason"] = "missed",
  ): void {
    const seq = Number(wire[0]);
    const last = this.lastSeq.get(site) ?? 0;
    if (!Number.isFinite(seq) || seq <= last) return; // duplicate (stream + snapshot)
    if (seq > last + 1) this.addGap(site, last + 1, seq - 1, gapReason, change);
    this.lastSeq.set(site, seq);
    const text = String(wire[1] ?? "");
    const plain = stripAnsi(text);
    const level = normLevel(wire[2]);
    const ts = wire[3] == null ? null : String(wire[3]);
    const entry: LineEntry = {
      kind: "line",
      gid: ++this.gid,
      key: this.nextKey(site, parseTs(ts)),
      site,
      seq,
      text,
      plain,
      level,
      ts,
      isError: isErrorLine(level, plain),
    };
    this.list(site).push(entry);
    change.added.push(entry);
  }

  private addSkip(site: string, first: number, last: number, change: StoreChange): void {
    const seen = this.lastSeq.get(site) ?? 0;
    if (!(last > seen)) return;
    if (first > seen + 1) this.addGap(site, seen + 1, first - 1, "missed", change);
    this.addGap(site, Math.max(first, seen + 1), last, "skipped", change);
    this.lastSeq.set(site, last);
  }

  /** Lines first..last of `site` are not in this view. */
  private addGap(site: string, first: number, last: number, reason: GapEntry["reason"], change: StoreChange): void {
    const count = last - first + 1;
    if (!(count > 0)) return;
    this.gapLines.set(site, (this.gapLines.get(site) ?? 0) + count);
    const list = this.list(site);
    const prev = list[list.length - 1];
    if (prev && prev.kind === "gap" && prev.reason === reason && prev.gid > this.changeStart) {
      prev.count += count; // not rendered yet: merge
      prev.last = last;
      return;
    }
    const key = this.nextKey(site, null);
    const gap: GapEntry = { kind: "gap", gid: ++this.gid, key, site, count, reason, first, last };
    list.push(gap);
    change.added.push(gap);
  }

  /** A new entry's key: its time, never below the site's previous key; without a time, the previous key
   * (the first lines of a site before any timestamp sort first). */
  private nextKey(site: string, time: number | null): number {
    const prev = this.lastKey.get(site) ?? -Infinity;
    const key = time == null ? prev : Math.max(time, prev);
    this.lastKey.set(site, key);
    return key;
  }

  private evict(site: string, change: StoreChange): void {
    const list = this.entries.get(site);
    if (!list || list.length <= this.cap) return;
    const gone = list.splice(0, list.length - this.cap);
    let lines = 0;
    for (const e of gone) {
      if (e.kind === "line") {
        lines++;
        if (e.isError) this.errorEvicted.add(site); // entries are in order: the first error left
      } else lines += e.count;
    }
    this.evicted.set(site, (this.evicted.get(site) ?? 0) + lines);
    // entries added and evicted within the same change were never announced: drop them
    const goneSet = new Set(gone);
    const announced = gone.filter((e) => e.gid <= this.changeStart);
    change.added = change.added.filter((e) => !goneSet.has(e));
    change.evicted.push(...announced);
  }

  private emit(change: StoreChange): void {
    if (change.added.length === 0 && change.evicted.length === 0) return;
    for (const fn of this.listeners) fn(change);
  }
}

/** One store per model, created by `initialize` (or lazily by the first render). */
const stores = new WeakMap<object, { store: LogStore; dispose: () => void }>();

export function connectStore(model: AnyModel<WidgetModel>): { store: LogStore; dispose: () => void } {
  const existing = stores.get(model);
  if (existing) return existing;
  const store = new LogStore(model.get("browser_max_lines") || DEFAULT_CAP);
  const onMsg = (msg: KernelMsg) => store.handleMessage(msg);
  const onSnapshot = () => store.mergeSnapshot(model.get("snapshot"));
  const onCap = () => store.setCap(model.get("browser_max_lines"));
  model.on("msg:custom", onMsg);
  model.on("change:snapshot", onSnapshot);
  model.on("change:browser_max_lines", onCap);
  onSnapshot();
  const entry = {
    store,
    dispose: () => {
      model.off("msg:custom", onMsg);
      model.off("change:snapshot", onSnapshot);
      model.off("change:browser_max_lines", onCap);
      stores.delete(model);
    },
  };
  stores.set(model, entry);
  return entry;
}
