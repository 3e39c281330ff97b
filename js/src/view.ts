/**
 * One rendered LogView: the header, the toolbar (lane tabs and controls), the lane window and the controls'
 * panels, wired to the model and the store. Every view-only control (lanes, level filter, search,
 * follow/pause, jump to first error, browser-side save) runs in the browser, so it works while the kernel is
 * busy. "Download" talks to the kernel, and search / first error also ask it for the lines this view does not
 * hold (`kernel-search.ts`).
 */
import type { AnyModel } from "@anywidget/types";
import { el } from "./dom";
import { jumpToFirstError } from "./first-error";
import { Header } from "./header";
import { KernelSearch } from "./kernel-search";
import { LaneWindow } from "./lanes";
import type { LogStore } from "./store";
import { Toolbar } from "./toolbar";
import type { WidgetModel } from "./types";

export { FLOOD_ROWS, MAX_ROWS, WINDOW } from "./lanes";
export { ALL } from "./sites";

export class LogViewUI {
  readonly root = el("div", "flarenb-logview", "flarenb-logview");
  readonly header: Header;
  readonly toolbar: Toolbar;
  readonly lanes: LaneWindow;
  readonly kernel: KernelSearch;

  constructor(model: AnyModel<WidgetModel>, store: LogStore, now?: () => number) {
    this.lanes = new LaneWindow(store, {
      entries: (added, evicted) => {
        this.toolbar.entries(added);
        this.header.entries(added, evicted);
      },
      laneChanged: () => this.toolbar.renderTabs(),
      status: () => {
        this.toolbar.update();
        this.kernel.refresh();
      },
    });
    this.kernel = new KernelSearch(model, store, this.lanes);
    const jump = (site: string) => jumpToFirstError(this.lanes, store, site, this.kernel);
    this.header = new Header(model, store, this.root, jump, now);
    this.toolbar = new Toolbar({ model, store, root: this.root, lanes: this.lanes, kernel: this.kernel });
    const { header, toolbar, lanes, kernel } = this;
    this.root.append(header.element, toolbar.element, lanes.notice, lanes.element, kernel.panel, ...toolbar.panels());
    lanes.renderLane();
  }

  dispose(): void {
    this.lanes.dispose();
    this.kernel.dispose();
    this.toolbar.dispose();
    this.header.dispose();
    this.root.remove();
  }
}
