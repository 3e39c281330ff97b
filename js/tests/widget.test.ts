import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { FLOOD_ROWS, MAX_ROWS, WINDOW } from "../src/view";
import widget from "../src/widget";
import type { WidgetModel, WireItem } from "../src/types";
import { FakeModel } from "./fake-model";

type Cleanup = () => void;
let cleanups: Cleanup[] = [];

function mount(model: FakeModel, init = true): { el: HTMLElement; cleanup: Cleanup } {
  const el = document.createElement("div");
  document.body.appendChild(el);
  const props = {
    model: model.asModel(),
    el,
    signal: new AbortController().signal,
    host: {} as never,
    experimental: {} as never,
  };
  if (init && !(model as unknown as { _init?: boolean })._init) {
    (model as unknown as { _init?: boolean })._init = true;
    const dispose = widget.initialize(props) as Cleanup;
    cleanups.push(dispose);
  }
  const cleanup = widget.render(props) as Cleanup;
  const both = () => {
    cleanup();
    el.remove();
  };
  cleanups.push(both);
  return { el, cleanup: both };
}

/** getByTestId: compares attribute values, so hostile site names need no selector escaping. */
const q = (el: HTMLElement, testid: string): HTMLElement | null =>
  [...el.querySelectorAll<HTMLElement>("[data-testid]")].find(
    (n) => n.getAttribute("data-testid") === testid,
  ) ?? null;
const lines = (el: HTMLElement) => [...el.querySelectorAll<HTMLElement>('[data-testid="flarenb-line"]')];
const last = (el: HTMLElement) => texts(el)[texts(el).length - 1];
const texts = (el: HTMLElement) => lines(el).map((l) => l.querySelector(".flarenb-line-text")!.textContent);

/** The view updates once per animation frame: tests run the queued frames by hand. */
let frames = new Map<number, FrameRequestCallback>();
let frameId = 0;
function runFrames() {
  const due = [...frames.values()];
  frames.clear();
  for (const cb of due) cb(performance.now());
}

/** A kernel message, then the next frame (`frame = false`: leave it queued). */
function send(model: FakeModel, sites: Record<string, WireItem[]>, frame = true) {
  model.custom({ kind: "lines", sites });
  if (frame) runFrames();
}

function click(node: HTMLElement | null) {
  expect(node).not.toBeNull();
  node!.dispatchEvent(new MouseEvent("click", { bubbles: true }));
}

/** jsdom has no layout: give the lane a fixed geometry. */
function fakeGeometry(lane: HTMLElement, clientHeight = 100) {
  Object.defineProperty(lane, "clientHeight", { configurable: true, get: () => clientHeight });
  Object.defineProperty(lane, "scrollHeight", {
    configurable: true,
    get: () => lane.querySelectorAll(".flarenb-line, .flarenb-gap").length * 20,
  });
  let top = 0;
  Object.defineProperty(lane, "scrollTop", {
    configurable: true,
    get: () => top,
    set: (v: number) => {
      top = Math.max(0, Math.min(v, lane.scrollHeight - clientHeight));
    },
  });
}

function scrollTo(lane: HTMLElement, top: number) {
  lane.scrollTop = top;
  lane.dispatchEvent(new Event("scroll"));
}

beforeEach(() => {
  cleanups = [];
  frames = new Map();
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

describe("header", () => {
  it("shows job, status, elapsed time and site states", () => {
    vi.useFakeTimers();
    vi.setSystemTime(1065 * 1000);
    const model = new FakeModel({
      site_states: {
        server: { state: "streaming", reason: null, since: null },
        "site-1": { state: "quiet", reason: null, since: 1053 },
        "site-2": { state: "unavailable", reason: "connection refused", since: null },
      },
    });
    const { el } = mount(model);
    expect(q(el, "flarenb-job-name")!.textContent).toBe("hello-numpy");
    expect(q(el, "flarenb-job-id")!.textContent).toBe("job-123");
    expect(q(el, "flarenb-status")!.textContent).toBe("RUNNING");
    expect(q(el, "flarenb-status")!.dataset.status).toBe("running");
    expect(q(el, "flarenb-elapsed")!.textContent).toBe("1m 05s");
    expect(q(el, "flarenb-site-state-server")!.dataset.state).toBe("streaming");
    expect(q(el, "flarenb-site-state-site-1")!.textContent).toBe("site-1quiet for 12s");
    expect(q(el, "flarenb-site-state-site-2")!.textContent).toBe("site-2unavailable: connection refused");

    vi.advanceTimersByTime(3000);
    expect(q(el, "flarenb-elapsed")!.textContent).toBe("1m 08s");
    expect(q(el, "flarenb-site-state-site-1")!.textContent).toBe("site-1quiet for 15s");

    model.set("status", "FINISHED:EXECUTION_EXCEPTION");
    model.set("end_ts", 1070);
    model.set("live", false);
    expect(q(el, "flarenb-status")!.dataset.status).toBe("failed");
    expect(q(el, "flarenb-elapsed")!.textContent).toBe("1m 10s");
    vi.advanceTimersByTime(5000);
    expect(q(el, "flarenb-elapsed")!.textContent).toBe("1m 10s");
    expect(q(el, "flarenb-logview")!.classList.contains("flarenb-finished")).toBe(true);
  });

  it("a finished job opened later shows its duration, not the time since it was submitted", () => {
    vi.useFakeTimers();
    vi.setSystemTime(1172 * 1000); // 2m 52s after the start
    const model = new FakeModel({ status: "FINISHED:COMPLETED", start_ts: 1000, end_ts: null, duration: "0:00:11.25" });
    const { el } = mount(model);
    expect(q(el, "flarenb-elapsed")!.textContent).toBe("11s");
    vi.advanceTimersByTime(5000);
    expect(q(el, "flarenb-elapsed")!.textContent).toBe("11s");
  });

  it("lists tabs with the interleaved view first, then the sites in model order", () => {
    const { el } = mount(new FakeModel());
    const tabs = [...q(el, "flarenb-lane-tabs")!.children].map((t) => t.getAttribute("data-testid"));
    expect(tabs).toEqual([
      "flarenb-lane-tab-all-sites",
      "flarenb-lane-tab-server",
      "flarenb-lane-tab-site-1",
      "flarenb-lane-tab-site-2",
    ]);
  });
});

describe("lines", () => {
  it("appear in the interleaved view with a site column and in each site's lane", () => {
    const model = new FakeModel();
    const { el } = mount(model);
    expect(q(el, "flarenb-empty")!.textContent).toBe("No lines yet.");
    send(model, { server: [[1, "server up", "INFO", null]], "site-1": [[1, "client up", "INFO", "t1"]] });
    send(model, { server: [[2, "round 1", "INFO", null]] });
    expect(q(el, "flarenb-lane-all-sites")).not.toBeNull();
    expect(texts(el)).toEqual(["server up", "client up", "round 1"]);
    expect(lines(el).map((l) => l.querySelector(".flarenb-line-site")!.textContent)).toEqual([
      "server",
      "site-1",
      "server",
    ]);
    expect(q(el, "flarenb-empty")).toBeNull();

    click(q(el, "flarenb-lane-tab-site-1"));
    expect(q(el, "flarenb-lane-site-1")).not.toBeNull();
    expect(q(el, "flarenb-lane-all-sites")).toBeNull();
    expect(q(el, "flarenb-lane-tab-site-1")!.getAttribute("aria-selected")).toBe("true");
    expect(texts(el)).toEqual(["client up"]);
    expect(lines(el)[0].querySelector(".flarenb-line-site")).toBeNull();
    expect(lines(el)[0].title).toBe("t1");

    send(model, { server: [[3, "more server", "INFO", null]], "site-1": [[2, "more client", "INFO", null]] });
    expect(texts(el)).toEqual(["client up", "more client"]);
    click(q(el, "flarenb-lane-tab-server"));
    expect(texts(el)).toEqual(["server up", "round 1", "more server"]);
  });

  it("accumulate in the model store before any view renders and survive a re-render", () => {
    const model = new FakeModel();
    const el0 = document.createElement("div");
    const dispose = widget.initialize({
      model: model.asModel(),
      signal: new AbortController().signal,
      experimental: {} as never,
    }) as Cleanup;
    (model as unknown as { _init: boolean })._init = true;
    cleanups.push(dispose);
    send(model, { "site-2": [[1, "early", "INFO", null], [2, "earlier than the view", "INFO", null]] });
    expect(el0.childElementCount).toBe(0);
    const first = mount(model);
    expect(texts(first.el)).toEqual(["early", "earlier than the view"]);
    first.cleanup();
    expect(model.listenerCount()).toBe(3); // the store's msg:custom, snapshot and cap listeners
    send(model, { "site-2": [[3, "while no view", "INFO", null]] });
    const second = mount(model);
    expect(texts(second.el)).toEqual(["early", "earlier than the view", "while no view"]);
    const withView = model.listenerCount();
    dispose(); // the model went away: the store stops listening
    expect(model.listenerCount()).toBe(withView - 3);
  });

  it("merges the snapshot trait without duplicates and marks lines it never received", () => {
    const model = new FakeModel({
      snapshot: { "site-1": [[41, "snap 41", "INFO", null], [42, "snap 42", "INFO", null]] },
    });
    const { el } = mount(model);
    expect(q(el, "flarenb-gap")!.querySelector(".flarenb-line-text")!.textContent).toBe(
      "⋯ 40 lines not received by this view (download for the complete log)",
    );
    send(model, { "site-1": [[42, "snap 42", "INFO", null], [43, "live 43", "INFO", null]] });
    model.set("snapshot", { "site-1": [[42, "snap 42", "INFO", null], [43, "live 43", "INFO", null], [44, "snap 44", null, null]] });
    runFrames();
    expect(texts(el)).toEqual(["snap 41", "snap 42", "live 43", "snap 44"]);
  });

  it("shows the kernel's skip marker with its count", () => {
    const model = new FakeModel();
    const { el } = mount(model);
    send(model, {
      server: [[1, "a", "INFO", null], { skipped: 1234, first: 2, last: 1235 }, [1236, "b", "INFO", null]],
    });
    const gap = q(el, "flarenb-gap")!;
    expect(gap.dataset.reason).toBe("skipped");
    expect(gap.textContent).toBe(
      "server⋯ 1,234 lines skipped to stay within the notebook's message budget (still downloadable)",
    );
    expect(texts(el)).toEqual(["a", "b"]);
  });

  it("render hostile text and site names as literal text", () => {
    const model = new FakeModel();
    const { el } = mount(model);
    const hostile = [
      "<script>window.pwned = 1</script>",
      "<img src=x onerror=alert(1)>",
      "&amp; &lt;b&gt;",
    ];
    const site = '<b onmouseover="x()">evil</b>';
    send(model, { [site]: hostile.map((t, i) => [i + 1, t, "INFO", null] as WireItem) });
    expect(texts(el)).toEqual(hostile);
    expect(el.querySelector("script")).toBeNull();
    expect(el.querySelector("img")).toBeNull();
    expect(el.querySelector("b")).toBeNull();
    expect((window as unknown as { pwned?: number }).pwned).toBeUndefined();
    expect(q(el, `flarenb-lane-tab-${site}`)!.textContent).toBe(site);
    expect(lines(el)[0].querySelector(".flarenb-line-site")!.textContent).toBe(site);
    // searching for an entity highlights literal characters
    const search = q(el, "flarenb-search") as HTMLInputElement;
    search.value = "&amp;";
    search.dispatchEvent(new Event("input"));
    expect([...el.querySelectorAll("mark")].map((m) => m.textContent)).toEqual(["&amp;"]);
  });

  it("renders ANSI colours as spans and never shows the escapes", () => {
    const model = new FakeModel();
    const { el } = mount(model);
    send(model, { server: [[1, "\x1b[31mred\x1b[0m plain \x1b[1;92mok\x1b[0m", "INFO", null]] });
    const text = lines(el)[0].querySelector(".flarenb-line-text")!;
    expect(text.textContent).toBe("red plain ok");
    expect(text.textContent).not.toContain("\x1b");
    const spans = [...text.querySelectorAll("span")].map((s) => [s.className, s.textContent]);
    expect(spans).toEqual([
      ["flarenb-ansi-fg-red", "red"],
      ["flarenb-ansi-fg-bright-green flarenb-ansi-bold", "ok"],
    ]);
  });

  it("colours levels and filters by minimum level", () => {
    const model = new FakeModel();
    const { el } = mount(model);
    send(model, {
      server: [
        [1, "dbg", "DEBUG", null],
        [2, "info", "INFO", null],
        [3, "warn", "WARNING", null],
        [4, "err", "ERROR", null],
        [5, "Traceback (most recent call last):", null, null],
        [6, "no level", null, null],
        [7, "crit", "CRITICAL", null],
      ],
    });
    expect(lines(el).map((l) => l.className)).toEqual([
      "flarenb-line flarenb-level-debug",
      "flarenb-line flarenb-level-info",
      "flarenb-line flarenb-level-warning",
      "flarenb-line flarenb-level-error flarenb-error-line",
      "flarenb-line flarenb-error-line",
      "flarenb-line",
      "flarenb-line flarenb-level-critical flarenb-error-line",
    ]);
    const filter = q(el, "flarenb-level-filter") as HTMLSelectElement;
    filter.value = "WARNING";
    filter.dispatchEvent(new Event("change"));
    expect(texts(el)).toEqual(["warn", "err", "Traceback (most recent call last):", "crit"]);
    send(model, { server: [[8, "late info", "INFO", null], [9, "late error", "ERROR", null]] });
    expect(texts(el)).toEqual(["warn", "err", "Traceback (most recent call last):", "crit", "late error"]);
    filter.value = "CRITICAL";
    filter.dispatchEvent(new Event("change"));
    expect(texts(el)).toEqual(["crit"]);
    filter.value = "";
    filter.dispatchEvent(new Event("change"));
    expect(lines(el)).toHaveLength(9);
  });

  it("search filters and highlights matches case-insensitively, across ANSI spans", () => {
    const model = new FakeModel();
    const { el } = mount(model);
    send(model, {
      "site-1": [
        [1, "Round 1 started", "INFO", null],
        [2, "loss=0.5", "INFO", null],
        [3, "\x1b[32mrou\x1b[0mnd 2 ROUND", "INFO", null],
      ],
    });
    const search = q(el, "flarenb-search") as HTMLInputElement;
    search.value = "round";
    search.dispatchEvent(new Event("input"));
    expect(texts(el)).toEqual(["Round 1 started", "round 2 ROUND"]);
    expect([...el.querySelectorAll("mark.flarenb-match")].map((m) => m.textContent)).toEqual([
      "Round",
      "rou",
      "nd",
      "ROUND",
    ]);
    expect(el.querySelector(".flarenb-ansi-fg-green > mark")!.textContent).toBe("rou");
    expect(q(el, "flarenb-search-count")!.textContent).toBe("2 matching lines");
    send(model, { "site-1": [[4, "round 3", "INFO", null], [5, "other", "INFO", null]] });
    expect(q(el, "flarenb-search-count")!.textContent).toBe("3 matching lines");
    search.value = "";
    search.dispatchEvent(new Event("input"));
    expect(el.querySelectorAll("mark")).toHaveLength(0);
    expect(lines(el)).toHaveLength(5);
  });
});

describe("interleaved by time, live", () => {
  const at = (s: number) => `2026-12-04 10:00:${String(s).padStart(2, "0")},000`;
  const ln = (seq: number, text: string, s: number | null): WireItem => [seq, text, "INFO", s == null ? null : at(s)];

  it("a site whose lines arrive late gets them inserted at their time, following or paused", () => {
    const model = new FakeModel();
    const { el } = mount(model);
    const lane = q(el, "flarenb-lane-all-sites")!;
    fakeGeometry(lane);
    send(model, { server: [ln(1, "srv 1", 1), ln(2, "srv 4", 4), ln(3, "srv 6", 6)] });
    send(model, { "site-1": [ln(1, "s1 2", 2), ln(2, "s1 5", 5), ln(3, "s1 tb", null), ln(4, "s1 7", 7)] });
    expect(texts(el)).toEqual(["srv 1", "s1 2", "srv 4", "s1 5", "s1 tb", "srv 6", "s1 7"]);

    // paused: later arrivals take their place by time too, and count as new
    expect(lane.scrollTop).toBe(40); // following: at the bottom
    scrollTo(lane, 40);
    scrollTo(lane, 0); // the user scrolls up: paused
    expect(q(el, "flarenb-follow")!.getAttribute("aria-pressed")).toBe("false");
    send(model, { "site-2": [ln(1, "s2 3", 3), ln(2, "s2 8", 8)] });
    expect(texts(el)).toEqual(["srv 1", "s1 2", "s2 3", "srv 4", "s1 5", "s1 tb", "srv 6", "s1 7", "s2 8"]);
    expect(q(el, "flarenb-follow")!.textContent).toBe("Paused: follow (2 new)");
    // a re-render (lane switch and back) shows the same order
    click(q(el, "flarenb-lane-tab-site-2"));
    click(q(el, "flarenb-lane-tab-all-sites"));
    expect(texts(el)).toEqual(["srv 1", "s1 2", "s2 3", "srv 4", "s1 5", "s1 tb", "srv 6", "s1 7", "s2 8"]);
  });

  it("a late line older than the rendered window is counted above it", () => {
    const model = new FakeModel();
    const { el } = mount(model);
    const many: WireItem[] = Array.from({ length: WINDOW + 5 }, (_, k) => [k + 1, `srv ${k}`, "INFO", at(10)]);
    for (let k = 0; k < many.length; k += FLOOD_ROWS) send(model, { server: many.slice(k, k + FLOOD_ROWS) });
    expect(lines(el)).toHaveLength(WINDOW);
    expect(q(el, "flarenb-show-earlier")!.textContent).toBe("⋯ 5 earlier lines: show 5 more");
    send(model, { "site-1": [ln(1, "s1 early", 1), ln(2, "s1 late", 11)] });
    expect(lines(el)).toHaveLength(WINDOW);
    expect(last(el)).toBe("s1 late");
    expect(q(el, "flarenb-show-earlier")!.textContent).toBe("⋯ 7 earlier lines: show 7 more");
    click(q(el, "flarenb-show-earlier"));
    expect(texts(el)[0]).toBe("s1 early");
  });
});

describe("follow", () => {
  it("follows new lines, pauses when the user scrolls up, and resumes", () => {
    const model = new FakeModel();
    const { el } = mount(model);
    const lane = q(el, "flarenb-lane-all-sites")!;
    fakeGeometry(lane);
    const follow = q(el, "flarenb-follow")!;
    const batch = (from: number, n: number): WireItem[] =>
      Array.from({ length: n }, (_, i) => [from + i, `line ${from + i}`, "INFO", null] as WireItem);

    send(model, { server: batch(1, 20) }); // 400px of content, 100px visible
    expect(lane.scrollTop).toBe(300);
    expect(follow.getAttribute("aria-pressed")).toBe("true");
    scrollTo(lane, 300); // the scroll event of our own scroll keeps following
    expect(follow.getAttribute("aria-pressed")).toBe("true");

    scrollTo(lane, 120); // user scrolls up
    expect(follow.getAttribute("aria-pressed")).toBe("false");
    send(model, { server: batch(21, 5) });
    expect(lane.scrollTop).toBe(120);
    expect(follow.textContent).toBe("Paused: follow (5 new)");

    click(follow);
    expect(follow.getAttribute("aria-pressed")).toBe("true");
    expect(lane.scrollTop).toBe(400);
    send(model, { server: batch(26, 5) });
    expect(lane.scrollTop).toBe(500);

    scrollTo(lane, 200);
    expect(follow.getAttribute("aria-pressed")).toBe("false");
    scrollTo(lane, 500); // back at the bottom: following again
    expect(follow.getAttribute("aria-pressed")).toBe("true");
    expect(follow.textContent).toBe("Following");
  });

  it("keeps a separate follow state per lane", () => {
    const model = new FakeModel();
    const { el } = mount(model);
    const lane = q(el, "flarenb-lane-all-sites")!;
    fakeGeometry(lane);
    send(model, { "site-1": Array.from({ length: 20 }, (_, i) => [i + 1, `l${i}`, "INFO", null] as WireItem) });
    scrollTo(lane, 100);
    expect(q(el, "flarenb-follow")!.getAttribute("aria-pressed")).toBe("false");
    click(q(el, "flarenb-lane-tab-site-1"));
    expect(q(el, "flarenb-follow")!.getAttribute("aria-pressed")).toBe("true");
    click(q(el, "flarenb-lane-tab-all-sites"));
    expect(q(el, "flarenb-follow")!.getAttribute("aria-pressed")).toBe("false");
  });
});

describe("first error", () => {
  it("is one click away from the header and from the toolbar", () => {
    const model = new FakeModel();
    const { el } = mount(model);
    expect(q(el, "flarenb-first-error-site-2")).toBeNull();
    send(model, {
      "site-2": [
        [1, "ok", "INFO", null],
        [2, "Traceback (most recent call last):", null, null],
        [3, '  File "x.py", line 1', null, null],
        [4, "later error", "ERROR", null],
      ],
      server: [[1, "server fine", "INFO", null]],
    });
    const search = q(el, "flarenb-search") as HTMLInputElement;
    search.value = "server";
    search.dispatchEvent(new Event("input"));

    click(q(el, "flarenb-first-error-site-2"));
    expect(q(el, "flarenb-lane-site-2")).not.toBeNull();
    expect(search.value).toBe(""); // the filter hid it: cleared
    const current = el.querySelector<HTMLElement>(".flarenb-current")!;
    expect(current.dataset.seq).toBe("2");
    expect(current.getAttribute("aria-current")).toBe("true");
    expect(q(el, "flarenb-follow")!.getAttribute("aria-pressed")).toBe("false");

    click(q(el, "flarenb-lane-tab-server"));
    click(q(el, "flarenb-jump-error"));
    expect(q(el, "flarenb-evicted-notice")!.textContent).toBe("No ERROR or traceback in this lane.");
  });
});

describe("bounded memory", () => {
  it("caps lines per site and says how many left the view", () => {
    const model = new FakeModel({ browser_max_lines: 5 });
    const { el } = mount(model);
    send(model, { server: Array.from({ length: 8 }, (_, i) => [i + 1, `s${i + 1}`, "INFO", null] as WireItem) });
    expect(texts(el)).toEqual(["s4", "s5", "s6", "s7", "s8"]);
    send(model, { server: [[9, "s9", "INFO", null]] });
    expect(texts(el)).toEqual(["s5", "s6", "s7", "s8", "s9"]);
    const notice = q(el, "flarenb-evicted-notice")!;
    expect(notice.hidden).toBe(false);
    expect(notice.textContent).toBe("4 older lines left this view (download for the complete log)");
  });
});

describe("rendering window", () => {
  const batch = (site: string, from: number, n: number, text = (i: number) => `${site} ${i}`): WireItem[] =>
    Array.from({ length: n }, (_, k) => [from + k, text(from + k), "INFO", null] as WireItem);
  const earlier = (el: HTMLElement) => q(el, "flarenb-show-earlier")!;

  it("renders only the newest rows while the store holds more, and shows earlier ones on demand", () => {
    const model = new FakeModel();
    const { el } = mount(model);
    const third = Math.floor(FLOOD_ROWS / 3);
    for (let k = 1; k <= 2000; k += third) {
      const n = Math.min(third, 2001 - k);
      send(model, { server: batch("server", k, n), "site-1": batch("site-1", k, n), "site-2": batch("site-2", k, n) });
    }
    expect(lines(el)).toHaveLength(WINDOW);
    expect(last(el)).toBe("site-2 2000"); // the newest entry, interleaved order
    expect(earlier(el).hidden).toBe(false);
    expect(earlier(el).textContent).toBe("⋯ 5,000 earlier lines: show 1,000 more");
    expect(q(el, "flarenb-evicted-notice")!.hidden).toBe(true); // nothing left the store

    click(earlier(el));
    expect(lines(el)).toHaveLength(2 * WINDOW);
    expect(earlier(el).textContent).toBe("⋯ 4,000 earlier lines: show 1,000 more");
    expect(q(el, "flarenb-follow")!.getAttribute("aria-pressed")).toBe("false");
    click(earlier(el)); // bounded: rows at the bottom make room
    expect(lines(el)).toHaveLength(MAX_ROWS);
    expect(earlier(el).textContent).toBe("⋯ 3,000 earlier lines: show 1,000 more");
    send(model, { server: batch("server", 2001, 10) }); // paused, window short of the tail: not rendered
    expect(lines(el)).toHaveLength(MAX_ROWS);
    expect(q(el, "flarenb-follow")!.textContent).toBe("Paused: follow (10 new)");

    click(q(el, "flarenb-follow"));
    expect(lines(el)).toHaveLength(WINDOW);
    expect(last(el)).toBe("server 2010");
    expect(earlier(el).textContent).toBe("⋯ 5,010 earlier lines: show 1,000 more");

    click(q(el, "flarenb-lane-tab-site-1")); // a site lane: its own window
    expect(lines(el)).toHaveLength(WINDOW);
    expect(texts(el)[0]).toBe("site-1 1001");
    expect(earlier(el).textContent).toBe("⋯ 1,000 earlier lines: show 1,000 more");
    click(earlier(el));
    expect(texts(el)[0]).toBe("site-1 1");
    expect(earlier(el).hidden).toBe(true);
  });

  it("applies the messages of one animation frame together and keeps counts through evictions", () => {
    const model = new FakeModel({ browser_max_lines: 1500 });
    const { el } = mount(model);
    send(model, { server: batch("server", 1, 1200) }, false);
    send(model, { server: batch("server", 1201, 200) }, false);
    expect(lines(el)).toHaveLength(0); // nothing until the frame
    runFrames(); // more than FLOOD_ROWS new rows while following: only the newest FLOOD_ROWS are rendered
    const above = (n: number) => `⋯ ${n.toLocaleString("en-US")} earlier lines: show 1,000 more`;
    expect(lines(el)).toHaveLength(FLOOD_ROWS);
    expect(earlier(el).textContent).toBe(above(1400 - FLOOD_ROWS));
    // 300 more: the store evicts 200 of the lines above the window
    send(model, { server: batch("server", 1401, 100) }, false);
    send(model, { server: batch("server", 1501, 200) });
    expect(lines(el)).toHaveLength(FLOOD_ROWS);
    expect(texts(el)[0]).toBe(`server ${1701 - FLOOD_ROWS}`);
    expect(last(el)).toBe("server 1700");
    expect(earlier(el).textContent).toBe(above(1500 - FLOOD_ROWS));
    expect(q(el, "flarenb-evicted-notice")!.textContent).toBe(
      "200 older lines left this view (download for the complete log)",
    );
    // added and evicted within one frame: never rendered, never counted
    send(model, { server: batch("server", 1701, 3000) }, false);
    expect(lines(el)).toHaveLength(FLOOD_ROWS);
    expect(last(el)).toBe("server 1700");
    runFrames();
    expect(lines(el)).toHaveLength(FLOOD_ROWS);
    expect(last(el)).toBe("server 4700");
    expect(earlier(el).textContent).toBe(above(1500 - FLOOD_ROWS));
    // a trickle while following: the window grows again, up to WINDOW
    for (let k = 0; k < 100; k += FLOOD_ROWS / 2) send(model, { server: batch("server", 4701 + k, FLOOD_ROWS / 2) });
    expect(lines(el)).toHaveLength(FLOOD_ROWS + 100);
    expect(earlier(el).textContent).toBe(above(1400 - FLOOD_ROWS));
    // no frames (a hidden tab): a large backlog is applied without waiting for one
    for (let i = 0; i < 7; i++) send(model, { server: batch("server", 4801 + i * 1500, 1500) }, false);
    expect(last(el)).toBe("server 15300");
    expect(lines(el)).toHaveLength(FLOOD_ROWS);
    // a lane switch before the frame shows the pending lines (and the new site's tab)
    send(model, { server: batch("server", 15301, 5), "site-9": batch("site-9", 1, 1) }, false);
    click(q(el, "flarenb-lane-tab-server"));
    expect(last(el)).toBe("server 15305");
    expect(q(el, "flarenb-lane-tab-site-9")).not.toBeNull();
    runFrames();
    expect(last(el)).toBe("server 15305");
    expect(lines(el)).toHaveLength(WINDOW);
  });

  it("search counts and shows matches that were outside the rendered window", () => {
    const model = new FakeModel();
    const { el } = mount(model);
    send(model, { server: batch("server", 1, 3000, (i) => (i === 3 ? "a rare NEEDLE" : `line ${i}`)) });
    expect(texts(el)).not.toContain("a rare NEEDLE");
    const search = q(el, "flarenb-search") as HTMLInputElement;
    search.value = "needle";
    search.dispatchEvent(new Event("input"));
    expect(texts(el)).toEqual(["a rare NEEDLE"]);
    expect(el.querySelector("mark.flarenb-match")!.textContent).toBe("NEEDLE");
    expect(q(el, "flarenb-search-count")!.textContent).toBe("1 matching lines");
    search.value = "line 1";
    search.dispatchEvent(new Event("input"));
    expect(q(el, "flarenb-search-count")!.textContent).toBe("1,111 matching lines"); // 1, 10-19, 100-199, 1000-1999
    expect(lines(el)).toHaveLength(WINDOW);
    expect(earlier(el).textContent).toBe("⋯ 111 earlier lines: show 111 more");
    click(earlier(el));
    expect(texts(el)[0]).toBe("line 1");
  });

  it("jumps to a first error outside the window and resumes following at the tail", () => {
    const model = new FakeModel();
    const { el } = mount(model);
    const lane = q(el, "flarenb-lane-all-sites")!;
    fakeGeometry(lane);
    send(model, {
      "site-1": [[1, "boot", "INFO", null], [2, "Traceback (most recent call last):", null, null]],
    });
    send(model, { server: batch("server", 1, 4000) });
    expect(el.querySelector('[data-site="site-1"][data-seq="2"]')).toBeNull();
    click(q(el, "flarenb-jump-error"));
    const current = el.querySelector<HTMLElement>(".flarenb-current")!;
    expect(current.dataset.site).toBe("site-1");
    expect(current.dataset.seq).toBe("2");
    expect(lines(el).length).toBeLessThanOrEqual(WINDOW);
    expect(earlier(el).hidden).toBe(true);
    expect(q(el, "flarenb-follow")!.getAttribute("aria-pressed")).toBe("false");
    send(model, { server: batch("server", 4001, 5) });
    expect(q(el, "flarenb-follow")!.textContent).toBe("Paused: follow (5 new)");
    expect(last(el)).not.toBe("server 4005");

    click(q(el, "flarenb-follow"));
    expect(last(el)).toBe("server 4005");
    expect(lines(el)).toHaveLength(WINDOW);
    expect(lane.scrollTop).toBe(lane.scrollHeight - lane.clientHeight);
  });

  it("follow sticks to the bottom of a bounded lane; paused, the window stops growing at MAX_ROWS", () => {
    const model = new FakeModel();
    const { el } = mount(model);
    const lane = q(el, "flarenb-lane-all-sites")!;
    fakeGeometry(lane);
    const per = FLOOD_ROWS / 2; // a steady stream, not a flood: the window grows to WINDOW
    for (let i = 0; i < 1500 / per; i++) {
      send(model, { server: batch("server", 1 + i * per, per), "site-1": batch("site-1", 1 + i * per, per) });
      expect(lane.scrollTop).toBe(lane.scrollHeight - lane.clientHeight);
      expect(lines(el).length).toBeLessThanOrEqual(WINDOW);
    }
    expect(lines(el)).toHaveLength(WINDOW);
    scrollTo(lane, 1000); // the user scrolls up: paused
    expect(q(el, "flarenb-follow")!.getAttribute("aria-pressed")).toBe("false");
    send(model, { server: batch("server", 1501, 1500) });
    expect(lane.scrollTop).toBe(1000);
    expect(lines(el)).toHaveLength(MAX_ROWS);
    expect(q(el, "flarenb-follow")!.textContent).toBe("Paused: follow (1,500 new)");
    scrollTo(lane, lane.scrollHeight); // back at the bottom of the window: follow the tail again
    expect(q(el, "flarenb-follow")!.getAttribute("aria-pressed")).toBe("true");
    expect(lines(el)).toHaveLength(WINDOW);
    expect(last(el)).toBe("server 3000");
    expect(lane.scrollTop).toBe(lane.scrollHeight - lane.clientHeight);
  });
});

describe("download", () => {
  it("asks the kernel and shows the paths it wrote", () => {
    const model = new FakeModel();
    const { el } = mount(model);
    click(q(el, "flarenb-download"));
    expect(model.sent).toHaveLength(1);
    const req = model.sent[0] as { kind: string; request_id: string };
    expect(req.kind).toBe("download");
    expect(q(el, "flarenb-download-result")!.dataset.state).toBe("pending");
    model.custom({ kind: "download_result", request_id: "someone-else", paths: ["x"], error: null });
    expect(q(el, "flarenb-download-result")!.dataset.state).toBe("pending");
    model.custom({
      kind: "download_result",
      request_id: req.request_id,
      paths: ["job-123_logs/server.log", "job-123_logs/<site>.log"],
      error: null,
    });
    const result = q(el, "flarenb-download-result")!;
    expect(result.dataset.state).toBe("done");
    expect([...result.querySelectorAll("code")].map((c) => c.textContent)).toEqual([
      "job-123_logs/server.log",
      "job-123_logs/<site>.log",
    ]);
  });

  it("restores the last result from the downloads trait", () => {
    const model = new FakeModel({ downloads: { paths: [], error: "PermissionError: denied" } });
    const { el } = mount(model);
    expect(q(el, "flarenb-download-result")!.textContent).toBe("Download failed: PermissionError: denied");
  });

  it("saves what the browser holds as a Blob without the kernel", async () => {
    const model = new FakeModel({ browser_max_lines: 2 });
    const { el } = mount(model);
    send(model, {
      server: [[1, "a", "INFO", null], [2, "\x1b[31mb\x1b[0m", "INFO", null], [3, "c", "INFO", null]],
      "site-1": [[1, "x", "INFO", null]],
    });
    let blob: Blob | null = null;
    let downloadName = "";
    const create = vi.fn((b: Blob) => {
      blob = b;
      return "blob:fake";
    });
    const revoke = vi.fn();
    Object.assign(URL, { createObjectURL: create, revokeObjectURL: revoke });
    const clickSpy = vi.spyOn(HTMLAnchorElement.prototype, "click").mockImplementation(function (this: HTMLAnchorElement) {
      downloadName = this.download;
    });
    click(q(el, "flarenb-download-browser"));
    expect(model.sent).toHaveLength(0);
    expect(downloadName).toBe("job-123_all-sites.log");
    expect(await blob!.text()).toBe(
      "# 1 older lines left the browser; use Download for the complete log\n[server] b\n[server] c\n[site-1] x\n",
    );
    click(q(el, "flarenb-lane-tab-site-1"));
    click(q(el, "flarenb-download-browser"));
    expect(downloadName).toBe("job-123_site-1.log");
    expect(await blob!.text()).toBe("x\n");
    clickSpy.mockRestore();
  });
});

describe("lifecycle", () => {
  it("cleanup removes the view's listeners and DOM", () => {
    const model = new FakeModel();
    const { el, cleanup } = mount(model);
    const withView = model.listenerCount();
    expect(el.querySelector(".flarenb-logview")).not.toBeNull();
    cleanup();
    expect(el.querySelector(".flarenb-logview")).toBeNull();
    // only the model-level store listeners (msg:custom, snapshot, cap) remain
    expect(model.listenerCount()).toBe(3);
    expect(withView).toBeGreaterThan(3);
  });

  it("render works without initialize (older anywidget)", () => {
    const model = new FakeModel();
    const { el } = mount(model, false);
    send(model, { server: [[1, "hi", "INFO", null]] });
    expect(texts(el)).toEqual(["hi"]);
  });
});

describe("round progress and metrics (issue 13)", () => {
  it("the header shows the progress trait; the Metrics toggle appears with series and opens the charts", () => {
    const model = new FakeModel();
    const { el } = mount(model);
    const progress = el.querySelector<HTMLElement>(".flarenb-progress")!;
    expect(progress.hidden).toBe(true);
    expect(q(el, "flarenb-metrics-toggle")!.hidden).toBe(true);
    model.set("progress", {
      round: 1,
      total: 3,
      sites: { "site-1": "reported", "site-2": "training" },
      round_seconds: 20,
      eta_seconds: 20,
    });
    expect(progress.hidden).toBe(false);
    expect(progress.closest('[data-testid="flarenb-header"]')).not.toBeNull();
    expect(q(el, "flarenb-progress-round")!.textContent).toBe("round 2 of 3");
    expect([...el.querySelectorAll<HTMLElement>(".flarenb-progress-site")].map((s) => s.dataset.state)).toEqual([
      "reported",
      "training",
    ]);
    model.set("metrics", {
      series: [
        { metric: "val_acc", site: "site-1", points: [[0, 0.5], [1, 0.7]] },
        { metric: "val_acc", site: "aggregated", points: [[0, 0.55], [1, 0.72]] },
      ],
    });
    const toggle = q(el, "flarenb-metrics-toggle")!;
    expect(toggle.hidden).toBe(false);
    click(toggle);
    const panel = q(el, "flarenb-metrics")!;
    expect(panel.hidden).toBe(false);
    const charts = [...panel.querySelectorAll<HTMLElement>(".flarenb-metric-chart")];
    expect(charts.map((c) => c.dataset.metric)).toEqual(["val_acc"]);
    expect([...charts[0].querySelectorAll(".flarenb-metric-series")].map((l) => l.getAttribute("data-site"))).toEqual([
      "site-1",
      "aggregated",
    ]);
    // the kernel resends the grown trait: drawn in the next frame
    model.set("metrics", {
      series: [
        { metric: "val_acc", site: "site-1", points: [[0, 0.5], [1, 0.7], [2, 0.8]] },
        { metric: "val_loss", site: "site-1", points: [[0, 1], [1, 0.8], [2, 0.6]] },
      ],
    });
    runFrames();
    expect([...panel.querySelectorAll<HTMLElement>(".flarenb-metric-chart")].map((c) => c.dataset.metric)).toEqual([
      "val_acc",
      "val_loss",
    ]);
  });
});

// keep the WidgetModel import used for type-checking the fake against the interface
export type _Check = WidgetModel;
