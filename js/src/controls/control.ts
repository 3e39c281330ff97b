/** A toolbar control: one file under `controls/`, listed once in `toolbar.ts` (`CONTROLS`). */
import type { AnyModel } from "@anywidget/types";
import type { KernelSearch } from "../kernel-search";
import type { LaneWindow } from "../lanes";
import type { LogStore } from "../store";
import type { WidgetModel } from "../types";

/** What a control may use: the model, the store, the widget root, the lane window and the kernel's search. */
export interface ViewHost {
  readonly model: AnyModel<WidgetModel>;
  readonly store: LogStore;
  readonly root: HTMLElement;
  readonly lanes: LaneWindow;
  /** asks the kernel for lines this view does not hold (absent in tests of a control alone) */
  readonly kernel?: KernelSearch;
}

export interface Control {
  /** its elements in the toolbar, in order */
  readonly nodes: HTMLElement[];
  /** an element shown below the lane (the metrics charts, the download result) */
  readonly panel?: HTMLElement;
  /** after each change of the lane window (counts, filter, follow): show it; write only what changed */
  update?(): void;
  dispose?(): void;
}

export type ControlFactory = (host: ViewHost) => Control;
