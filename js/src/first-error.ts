/**
 * "First error": the header's per-site buttons and the toolbar's button show a lane's first ERROR or traceback.
 * When the lane misses lines (skipped under a flood, or evicted), the kernel is asked too: an earlier error it
 * holds is shown where it belongs (`kernel-search.ts`).
 */
import type { KernelSearch } from "./kernel-search";
import type { LaneWindow } from "./lanes";
import { ALL } from "./sites";
import { entryBefore, type LogStore } from "./store";
import type { LineEntry } from "./types";

/** Show `lane` (ALL: every site) at its first error, or say why there is none. */
export function jumpToFirstError(lanes: LaneWindow, store: LogStore, lane: string, kernel?: KernelSearch): void {
  let target: LineEntry | null = null;
  const sites = lane === ALL ? store.sites() : [lane];
  for (const s of sites) {
    const e = store.firstError(s);
    if (e && (!target || entryBefore(e, target))) target = e;
  }
  if (lane !== ALL && lane !== lanes.active) lanes.showLane(lane);
  if (target) lanes.showEntry(target);
  if (kernel?.firstError(target)) return; // the kernel's answer may show an earlier one
  if (!target) {
    const gone = sites.some((s) => store.errorEvicted.has(s));
    lanes.showNotice(
      gone ? "The first error left this view: download the complete log." : "No ERROR or traceback in this lane.",
    );
  }
}
