/**
 * One rendered LogView: the header, the toolbar (lane tabs and controls), the lane window and the controls'
 * panels, wired to the model and the store. Every view-only control (lanes, level filter, search,
 * follow/pause, jump to first error, browser-side save) runs entirely in the browser, so it works while the
 * kernel is busy. Only "Download" talks to the kernel.
 */
import type { AnyModel } from "@anywidget/types";
import { el } from "./dom";
import { jumpToFirstError } from "./first-error";
import { Header } from "./header";
import { LaneWindow } from "./lanes";
import type { LogStore } from "./store";
import { Toolbar } from "./toolbar";
import type { WidgetModel } from "./types";

export { MAX_ROWS, WINDOW } from "./lanes";
export { ALL } from "./sites";

export class LogViewUI {
  readonly root = el("div", "flarenb-logview", "flarenb-logview");
  readonly header: Header;
  readonly toolbar: Toolbar;
  readonly lanes: LaneWindow;

  constructor(model: AnyModel<WidgetModel>, store: LogStore, now?: () => number) {
    this.lanes = new LaneWindow(store, {
      entries: (added, evicted) => {
        this.toolbar.entries(added);
        this.header.entries(added, evicted);
      },
      laneChanged: () => this.toolbar.renderTabs(),
      status: () => this.toolbar.update(),
    });
    this.header = new Header(model, store, this.root, (site) => jumpToFirstError(this.lanes, store, site), now);
    this.toolbar = new Toolbar({ model, store, root: this.root, lanes: this.lanes });
    const { header, toolbar, lanes } = this;
    this.root.append(header.element, toolbar.element, lanes.notice, lanes.element, ...toolbar.panels());
    lanes.renderLane();
  }

  dispose(): void {
    this.lanes.dispose();
    this.toolbar.dispose();
    this.header.dispose();
    this.root.remove();
  }
}
