import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { SEARCH_DELAY } from "../src/kernel-search";
import { LogStore } from "../src/store";
import type { FoundLine, SearchRequest, WireItem } from "../src/types";
import widget from "../src/widget";
import { FakeModel } from "./fake-model";

let cleanups: Array<() => void> = [];
let frames = new Map<number, FrameRequestCallback>();
let frameId = 0;

function mount(model: FakeModel): HTMLElement {
  const el = document.createElement("div");
  document.body.appendChild(el);
  const props = { model: model.asModel(), el, signal: new AbortController().signal, host: {} as never, experimental: {} as never };
  cleanups.push(widget.initialize(props) as () => void);
  const cleanup = widget.render(props) as () => void;
  cleanups.push(() => {
    cleanup();
    el.remove();
  });
  return el;
}

const q = (el: HTMLElement, testid: string): HTMLElement | null => el.querySelector(`[data-testid="${testid}"]`);
const all = (el: HTMLElement, testid: string) => [...el.querySelectorAll<HTMLElement>(`[data-testid="${testid}"]`)];

function send(model: FakeModel, sites: Record<string, WireItem[]>) {
  model.custom({ kind: "lines", sites });
  for (const cb of [...frames.values()]) cb(performance.now());
  frames.clear();
}

function type(el: HTMLElement, text: string) {
  const search = q(el, "flarenb-search") as HTMLInputElement;
  search.value = text;
  search.dispatchEvent(new Event("input"));
}

const requests = (model: FakeModel) => model.sent.filter((m) => (m as SearchRequest).kind === "search") as SearchRequest[];

function reply(model: FakeModel, req: SearchRequest, lines: FoundLine[], extra: object = {}) {
  model.custom({
    kind: "search_result",
    request_id: req.request_id,
    first_error: req.first_error,
    lines,
    matches: lines.length,
    truncated: false,
    dropped: 0,
    error: null,
    ...extra,
  });
}

/** site-1 received lines 1-3, then a skip marker for 4-9, then 10-11. */
function flooded(model: FakeModel) {
  send(model, {
    "site-1": [
      [1, "start", "INFO", null],
      [2, "round 1", "INFO", null],
      [3, "round 2", "INFO", null],
      { skipped: 6, first: 4, last: 9 },
      [10, "round 9", "INFO", null],
      [11, "later ERROR here", "ERROR", null],
    ],
  });
}

beforeEach(() => {
  cleanups = [];
  frames = new Map();
  vi.useFakeTimers();
  vi.stubGlobal("requestAnimationFrame", (cb: FrameRequestCallback) => {
    frames.set(++frameId, cb);
    return frameId;
  });
  vi.stubGlobal("cancelAnimationFrame", (id: number) => frames.delete(id));
});
afterEach(() => {
  for (const c of cleanups.reverse()) c();
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

describe("the store knows what it does not hold", () => {
  it("gap markers carry their seqs; held runs and missing lines per site", () => {
    const store = new LogStore(5);
    store.ingest({ a: [[1, "x", null, null], [2, "y", null, null], { skipped: 3, first: 3, last: 5 }, [7, "z", null, null]] });
    store.ingest({ b: [[1, "only", null, null]] });
    expect(store.heldRuns("a")).toEqual([[1, 2], [7, 7]]);
    expect(store.gapAt("a", 4)).toMatchObject({ kind: "gap", reason: "skipped", first: 3, last: 5, count: 3 });
    expect(store.gapAt("a", 6)).toMatchObject({ reason: "missed", first: 6, last: 6 });
    expect(store.gapAt("a", 2)).toBeNull();
    expect(store.hasMissing("a")).toBe(true);
    expect(store.hasMissing("b")).toBe(false);
    store.ingest({ b: [2, 3, 4, 5, 6, 7].map((s) => [s, "l", null, null] as WireItem) });
    expect(store.hasMissing("b")).toBe(true); // evicted by the cap: the kernel has it
  });
});

describe("search in lines not shown here", () => {
  it("asks the kernel once typing stops, leaving out the lines held, and lists what it found as text", () => {
    const model = new FakeModel();
    const el = mount(model);
    flooded(model);
    type(el, "r");
    type(el, "round");
    expect(requests(model)).toHaveLength(0);
    vi.advanceTimersByTime(SEARCH_DELAY);
    const [req] = requests(model);
    expect(req).toMatchObject({ query: "round", min_level: null, first_error: false });
    expect(req.held["site-1"]).toEqual([[1, 3], [10, 11]]);
    expect(q(el, "flarenb-found")!.hidden).toBe(false);
    expect(q(el, "flarenb-found")!.dataset.state).toBe("pending");

    reply(model, req, [
      ["site-1", 5, "round 4 <img src=x onerror=alert(1)>", "INFO", null],
      ["site-1", 2, "round 1", "INFO", null], // held since: left out
    ]);
    const found = all(el, "flarenb-found-line");
    expect(found).toHaveLength(1);
    expect(found[0].textContent).toContain("round 4 <img src=x onerror=alert(1)>");
    expect(found[0].querySelector("img")).toBeNull();
    expect(found[0].querySelector("mark")?.textContent?.toLowerCase()).toBe("round");
    expect(q(el, "flarenb-found-summary")!.textContent).toBe("2 matching lines not shown here (from the kernel)");
    expect(all(el, "flarenb-line")).toHaveLength(3); // the lane: its own matches only

    // clicking shows where it belongs: the skip marker standing for it (the search is cleared to show it)
    found[0].dispatchEvent(new MouseEvent("click", { bubbles: true }));
    const current = el.querySelector<HTMLElement>(".flarenb-lane .flarenb-current")!;
    expect(current.dataset.testid ?? current.getAttribute("data-testid")).toBe("flarenb-gap");
    expect(current.textContent).toContain("6 lines skipped");
    expect(all(el, "flarenb-found-line")).toHaveLength(1); // the results stay
    click(q(el, "flarenb-found-close"));
    expect(q(el, "flarenb-found")!.hidden).toBe(true);
  });

  it("ignores a stale answer, and does not ask when the lane holds every line", () => {
    const model = new FakeModel();
    const el = mount(model);
    send(model, { server: [[1, "all here", "INFO", null]] });
    type(el, "here");
    vi.advanceTimersByTime(SEARCH_DELAY);
    expect(requests(model)).toHaveLength(0);
    flooded(model);
    type(el, "round");
    vi.advanceTimersByTime(SEARCH_DELAY);
    type(el, "round 4");
    vi.advanceTimersByTime(SEARCH_DELAY);
    const [first, second] = requests(model);
    reply(model, first, [["site-1", 5, "round 4", "INFO", null]]);
    expect(all(el, "flarenb-found-line")).toHaveLength(0);
    reply(model, second, [], { matches: 0, dropped: 12 });
    expect(q(el, "flarenb-found-summary")!.textContent).toBe(
      "No other matching lines in the kernel's copy; 12 older lines left the kernel too (download them).",
    );
  });

  it("a level filter alone asks too", () => {
    const model = new FakeModel();
    const el = mount(model);
    flooded(model);
    const select = q(el, "flarenb-level-filter") as HTMLSelectElement;
    select.value = "ERROR";
    select.dispatchEvent(new Event("change"));
    vi.advanceTimersByTime(SEARCH_DELAY);
    expect(requests(model)[0]).toMatchObject({ query: "", min_level: "ERROR" });
  });
});

describe("first error in lines not shown here", () => {
  it("jumps to the local one at once, then to an earlier one the kernel found", () => {
    const model = new FakeModel();
    const el = mount(model);
    flooded(model);
    click(q(el, "flarenb-lane-tab-site-1"));
    click(q(el, "flarenb-jump-error"));
    expect(el.querySelector<HTMLElement>(".flarenb-lane .flarenb-current")!.dataset.seq).toBe("11");
    const [req] = requests(model);
    expect(req).toMatchObject({ first_error: true, sites: ["site-1"] });
    reply(model, req, [["site-1", 7, "boom", "ERROR", null]]);
    expect(q(el, "flarenb-found-summary")!.textContent).toBe("First error, in lines not shown here (from the kernel):");
    expect(all(el, "flarenb-found-line")[0].textContent).toContain("boom");
    const current = el.querySelector<HTMLElement>(".flarenb-lane .flarenb-current")!;
    expect(current.getAttribute("data-testid")).toBe("flarenb-gap");
  });

  it("keeps the local one when the kernel's is not earlier, and says when there is none anywhere", () => {
    const model = new FakeModel();
    const el = mount(model);
    flooded(model);
    click(q(el, "flarenb-jump-error"));
    reply(model, requests(model)[0], [["site-1", 11, "later ERROR here", "ERROR", null]]);
    expect(q(el, "flarenb-found")!.hidden).toBe(true);
    expect(el.querySelector<HTMLElement>(".flarenb-lane .flarenb-current")!.dataset.seq).toBe("11");

    const other = new FakeModel();
    const el2 = mount(other);
    send(other, { server: [[1, "a", "INFO", null], { skipped: 5, first: 2, last: 6 }] });
    click(q(el2, "flarenb-jump-error"));
    reply(other, requests(other)[0], []);
    expect(q(el2, "flarenb-evicted-notice")!.textContent).toBe("No ERROR or traceback in this lane.");
  });
});

function click(node: HTMLElement | null) {
  expect(node).not.toBeNull();
  node!.dispatchEvent(new MouseEvent("click", { bubbles: true }));
}
