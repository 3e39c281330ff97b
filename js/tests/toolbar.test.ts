import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { LaneWindow } from "../src/lanes";
import { ALL } from "../src/sites";
import { LogStore } from "../src/store";
import { CONTROLS, Toolbar, type Control, type ControlFactory, type ViewHost } from "../src/toolbar";
import type { WireItem } from "../src/types";
import { FakeModel } from "./fake-model";

const byId = (root: HTMLElement, id: string) =>
  [...root.querySelectorAll<HTMLElement>("[data-testid]")].find((n) => n.getAttribute("data-testid") === id) ?? null;
const texts = (lane: HTMLElement) => [...lane.querySelectorAll(".flarenb-line .flarenb-line-text")].map((n) => n.textContent);
const click = (node: HTMLElement | null) => node!.dispatchEvent(new MouseEvent("click", { bubbles: true }));

/** A toolbar wired to a real lane window, as view.ts wires them (without the header). */
function make(factories?: readonly ControlFactory[]) {
  const model = new FakeModel();
  const store = new LogStore();
  const root = document.createElement("div");
  let toolbar: Toolbar | null = null;
  const lanes = new LaneWindow(store, {
    entries: (added) => toolbar?.entries(added),
    laneChanged: () => toolbar?.renderTabs(),
    status: () => toolbar?.update(),
  });
  const host: ViewHost = { model: model.asModel(), store, root, lanes };
  toolbar = new Toolbar(host, factories);
  root.append(toolbar.element, lanes.notice, lanes.element, ...toolbar.panels());
  document.body.appendChild(root);
  lanes.renderLane();
  const ingest = (sites: Record<string, WireItem[]>) => {
    store.ingest(sites);
    lanes.flush();
  };
  return { model, store, root, lanes, toolbar, ingest };
}

beforeEach(() => {
  vi.stubGlobal("requestAnimationFrame", () => 0);
  vi.stubGlobal("cancelAnimationFrame", () => {});
});
afterEach(() => {
  vi.unstubAllGlobals();
  document.body.replaceChildren();
});

describe("Toolbar", () => {
  it("lays out the tabs, then the registered controls in order", () => {
    const { root } = make();
    const controls = root.querySelector(".flarenb-controls")!;
    expect([...controls.children].map((c) => c.getAttribute("data-testid"))).toEqual([
      "flarenb-level-filter",
      "flarenb-search",
      "flarenb-search-count",
      "flarenb-jump-error",
      "flarenb-follow",
      "flarenb-metrics-toggle",
      "flarenb-download",
      "flarenb-download-browser",
    ]);
    expect(CONTROLS).toHaveLength(7);
    expect(root.querySelector(".flarenb-toolbar")!.firstElementChild!.getAttribute("data-testid")).toBe("flarenb-lane-tabs");
    expect(root.lastElementChild!.getAttribute("data-testid")).toBe("flarenb-download-result"); // a panel
  });

  it("a tab shows its lane; a site the model does not list gets a tab when its lines arrive", () => {
    const { root, lanes, ingest } = make();
    ingest({ server: [[1, "srv", "INFO", null]], "site-1": [[1, "one", "INFO", null]] });
    click(byId(root, "flarenb-lane-tab-site-1"));
    expect(lanes.active).toBe("site-1");
    expect(byId(root, "flarenb-lane-tab-site-1")!.getAttribute("aria-selected")).toBe("true");
    expect(byId(root, "flarenb-lane-tab-all-sites")!.getAttribute("aria-selected")).toBe("false");
    expect(texts(lanes.element)).toEqual(["one"]);
    expect(byId(root, "flarenb-lane-tab-site-5")).toBeNull();
    ingest({ "site-5": [[1, "five", "INFO", null]] });
    expect(byId(root, "flarenb-lane-tab-site-5")!.textContent).toBe("site-5");
    click(byId(root, "flarenb-lane-tab-all-sites"));
    expect(lanes.active).toBe(ALL);
  });

  it("the level filter and the search set the lane's filter and re-render it", () => {
    const { root, lanes, ingest } = make();
    ingest({ server: [[1, "dbg round", "DEBUG", null], [2, "info round", "INFO", null], [3, "bad", "ERROR", null]] });
    const level = byId(root, "flarenb-level-filter") as HTMLSelectElement;
    level.value = "INFO";
    level.dispatchEvent(new Event("change"));
    expect(lanes.filter.minLevel).toBe("INFO");
    expect(texts(lanes.element)).toEqual(["info round", "bad"]);
    const search = byId(root, "flarenb-search") as HTMLInputElement;
    search.value = "ROUND";
    search.dispatchEvent(new Event("input"));
    expect(lanes.filter.query).toBe("ROUND");
    expect(texts(lanes.element)).toEqual(["info round"]);
    expect(byId(root, "flarenb-search-count")!.textContent).toBe("1 matching lines");
    // "first error" clears a filter that hides the error: the inputs follow the lane's filter
    click(byId(root, "flarenb-jump-error"));
    expect(lanes.filter.minLevel).toBeNull();
    expect(level.value).toBe("");
    expect(search.value).toBe("");
    expect(byId(root, "flarenb-search-count")!.textContent).toBe("");
    expect(texts(lanes.element)).toEqual(["dbg round", "info round", "bad"]);
  });

  it("the follow button shows the lane window's follow state", () => {
    const { root, lanes, ingest } = make();
    const follow = byId(root, "flarenb-follow")!;
    expect(follow.textContent).toBe("Following");
    lanes.setFollow(false);
    expect(follow.getAttribute("aria-pressed")).toBe("false");
    expect(root.classList.contains("flarenb-paused")).toBe(true);
    ingest({ server: [[1, "a", "INFO", null], [2, "b", "INFO", null]] });
    expect(follow.textContent).toBe("Paused: follow (2 new)");
    click(follow);
    expect(lanes.following()).toBe(true);
    expect(root.classList.contains("flarenb-paused")).toBe(false);
  });

  it("a new control is one factory in the list: its nodes, panel, update and dispose are wired", () => {
    const updates: number[] = [];
    let disposed = false;
    const counter: ControlFactory = ({ lanes }): Control => {
      const badge = document.createElement("span");
      badge.setAttribute("data-testid", "line-count");
      const panel = document.createElement("div");
      return {
        nodes: [badge],
        panel,
        update() {
          updates.push(lanes.count());
          badge.textContent = String(lanes.count());
        },
        dispose() {
          disposed = true;
        },
      };
    };
    const { root, toolbar, ingest } = make([...CONTROLS, counter]);
    expect(root.querySelector(".flarenb-controls")!.lastElementChild!.getAttribute("data-testid")).toBe("line-count");
    expect(toolbar.panels()).toHaveLength(3);
    ingest({ server: [[1, "a", "INFO", null], [2, "b", "INFO", null]] });
    expect(byId(root, "line-count")!.textContent).toBe("2");
    expect(updates).toEqual([0, 2]);
    toolbar.dispose();
    expect(disposed).toBe(true);
  });

  it("dispose removes the toolbar's model listeners", () => {
    const { model, toolbar } = make();
    expect(model.listenerCount()).toBeGreaterThan(0);
    toolbar.dispose();
    expect(model.listenerCount()).toBe(0);
  });
});
