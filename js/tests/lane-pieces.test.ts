import { afterEach, describe, expect, it, vi } from "vitest";
import { FrameBatch } from "../src/frames";
import { RowWindow } from "../src/rows";
import { LogStore } from "../src/store";
import type { Entry, WireItem } from "../src/types";

afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

describe("FrameBatch", () => {
  const change = (n: number) => ({ added: Array.from({ length: n }, () => ({}) as Entry), evicted: [] });

  it("collects changes until one animation frame applies them together", () => {
    const frames: FrameRequestCallback[] = [];
    vi.stubGlobal("requestAnimationFrame", (cb: FrameRequestCallback) => frames.push(cb));
    vi.stubGlobal("cancelAnimationFrame", () => {});
    const taken: number[] = [];
    const batch: FrameBatch = new FrameBatch(() => taken.push(batch.take().added.length), 100);
    batch.push(change(2));
    batch.push(change(3));
    expect(frames).toHaveLength(1);
    expect(batch.scheduled).toBe(true);
    frames[0](0);
    expect(taken).toEqual([5]);
    expect(batch.scheduled).toBe(false);
  });

  it("runs from a timer where frames stop (a hidden tab), and at once past its limit", () => {
    vi.useFakeTimers();
    vi.stubGlobal("requestAnimationFrame", () => 1);
    vi.stubGlobal("cancelAnimationFrame", () => {});
    const taken: number[] = [];
    const batch: FrameBatch = new FrameBatch(() => taken.push(batch.take().added.length), 10);
    batch.push(change(4));
    vi.advanceTimersByTime(250);
    expect(taken).toEqual([4]);
    batch.push(change(6));
    batch.push(change(6));
    expect(taken).toEqual([4, 12]);
    vi.advanceTimersByTime(1000);
    expect(taken).toEqual([4, 12]); // the timer was cancelled by take()
  });
});

describe("RowWindow", () => {
  const store = new LogStore();
  store.ingest({ server: Array.from({ length: 10 }, (_, i) => [i + 1, `l${i + 1}`, "INFO", null] as WireItem) });
  const view = store.site("server");

  function make() {
    const lane = document.createElement("div");
    const top = document.createElement("button");
    const win = new RowWindow(lane, top, (e) => {
      const row = document.createElement("div");
      row.textContent = e.kind === "line" ? e.text : "gap";
      return row;
    });
    const dom = () => [...lane.children].slice(1).map((r) => r.textContent);
    return { lane, top, win, dom };
  }

  it("renders a slice of the view and counts what is above and below it", () => {
    const { lane, top, win, dom } = make();
    win.render(view, 6, 9);
    expect(lane.firstElementChild).toBe(top);
    expect(dom()).toEqual(["l7", "l8", "l9"]);
    expect([win.before, win.shown.length, win.after, win.count()]).toEqual([6, 3, 1, 10]);
    expect(win.row(view[6])!.textContent).toBe("l7");
    expect(win.row(view[0])).toBeUndefined();
  });

  it("prepends, appends and trims at either end", () => {
    const { win, dom } = make();
    win.render(view, 6, 8);
    win.prepend(view.slice(3, 6), 3);
    expect(dom()).toEqual(["l4", "l5", "l6", "l7", "l8"]);
    win.trimBottom(3);
    expect(dom()).toEqual(["l4", "l5", "l6"]);
    expect([win.before, win.after]).toEqual([3, 4]);
    win.append(view.slice(6, 8));
    win.after -= 2;
    win.trimTop(2);
    expect(dom()).toEqual(["l7", "l8"]);
    expect([win.before, win.after, win.count()]).toEqual([6, 2, 10]);
  });

  it("inserts an entry at its place in the interleaved order", () => {
    const other = new LogStore();
    const at = (s: number) => `2026-12-04 10:00:0${s},000`;
    other.ingest({ a: [[1, "a1", "INFO", at(1)], [2, "a3", "INFO", at(3)], [3, "a5", "INFO", at(5)]] });
    other.ingest({ b: [[1, "b4", "INFO", at(4)]] });
    const { win, dom } = make();
    win.render(other.site("a"), 0, 3);
    win.insert(other.site("b")[0]);
    expect(dom()).toEqual(["a1", "a3", "b4", "a5"]);
    expect(win.shown.map((e) => (e.kind === "line" ? e.text : ""))).toEqual(["a1", "a3", "b4", "a5"]);
  });
});
