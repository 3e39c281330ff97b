/**
 * The toolbar: the lane tabs ("All sites", then one per site) and the controls. Every control is one file
 * under `controls/` listed once in CONTROLS (in toolbar order); it gets the ViewHost and refreshes itself in
 * `update` after each change of the lane window.
 */
import { el } from "./dom";
import type { Control, ControlFactory, ViewHost } from "./controls/control";
import { download, saveFromBrowser } from "./controls/downloads";
import { follow } from "./controls/follow";
import { jumpError } from "./controls/jump-error";
import { levelFilter } from "./controls/level-filter";
import { metrics } from "./controls/metrics";
import { search } from "./controls/search";
import { ALL, laneId, siteList } from "./sites";
import type { Entry } from "./types";

export type { Control, ControlFactory, ViewHost } from "./controls/control";

/** The toolbar's controls, in order. A new control: a new file under `controls/`, added here. */
export const CONTROLS: readonly ControlFactory[] = [
  levelFilter,
  search,
  jumpError,
  follow,
  metrics,
  download,
  saveFromBrowser,
];

export class Toolbar {
  readonly element = el("div", "flarenb-toolbar", "flarenb-toolbar");
  private readonly tabs = el("div", "flarenb-tabs", "flarenb-lane-tabs");
  private readonly controls: Control[];
  private readonly stopListening: () => void;

  constructor(
    private readonly host: ViewHost,
    factories: readonly ControlFactory[] = CONTROLS,
  ) {
    this.tabs.setAttribute("role", "tablist");
    this.controls = factories.map((make) => make(host));
    const box = el("div", "flarenb-controls");
    box.append(...this.controls.flatMap((c) => c.nodes));
    this.element.append(this.tabs, box);
    const onSites = () => this.renderTabs();
    host.model.on("change:sites", onSites);
    this.stopListening = () => host.model.off("change:sites", onSites);
    this.renderTabs();
  }

  /** The controls' panels, shown below the lane. */
  panels(): HTMLElement[] {
    return this.controls.flatMap((c) => (c.panel ? [c.panel] : []));
  }

  dispose(): void {
    this.stopListening();
    for (const c of this.controls) c.dispose?.();
  }

  /** One tab per lane; the active one aria-selected. */
  renderTabs(): void {
    const { lanes, model, store } = this.host;
    this.tabs.replaceChildren();
    for (const lane of [ALL, ...siteList(model, store)]) {
      const tab = el("button", "flarenb-tab", `flarenb-lane-tab-${laneId(lane)}`);
      tab.type = "button";
      tab.setAttribute("role", "tab");
      tab.textContent = lane === ALL ? "All sites" : lane;
      tab.setAttribute("aria-selected", String(lane === lanes.active));
      tab.addEventListener("click", () => lanes.showLane(lane));
      this.tabs.appendChild(tab);
    }
  }

  /** Entries reached the view: a site the model does not list yet gets a tab. */
  entries(added: Entry[]): void {
    const sites = this.host.model.get("sites") ?? [];
    if (added.some((e) => !sites.includes(e.site))) this.renderTabs();
  }

  /** The lane window changed: every control shows its state. */
  update(): void {
    for (const c of this.controls) c.update?.();
  }
}
