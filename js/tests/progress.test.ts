import { describe, expect, it } from "vitest";
import { approxDuration, fmtValue } from "../src/format";
import { Header } from "../src/header";
import { ProgressView, roundProgress } from "../src/progress";
import { LogStore } from "../src/store";
import type { Progress } from "../src/types";
import { FakeModel } from "./fake-model";

const byId = (root: HTMLElement, id: string) =>
  [...root.querySelectorAll<HTMLElement>("[data-testid]")].find((n) => n.getAttribute("data-testid") === id) ?? null;

function make(progress?: Progress) {
  const model = new FakeModel(progress === undefined ? {} : { progress });
  const root = document.createElement("div");
  const header = new Header(model.asModel(), new LogStore(), root, () => {}, () => 1000);
  root.appendChild(header.element);
  const region = () => root.querySelector<HTMLElement>(".flarenb-progress")!;
  const sites = () =>
    [...root.querySelectorAll<HTMLElement>(".flarenb-progress-site")].map((s) => [s.textContent, s.dataset.state, s.title]);
  return { model, root, header, region, sites };
}

const progress = (over: Partial<Extract<Progress, { round: number }>> = {}): Progress => ({
  round: 0,
  total: 5,
  sites: { "site-1": "reported", "site-2": "training", "site-3": "silent" },
  round_seconds: 12.4,
  eta_seconds: 50,
  ...over,
});

describe("round progress in the header", () => {
  it("is hidden while the trait is {} or missing: no misleading text", () => {
    for (const p of [undefined, {} as Progress]) {
      const { region } = make(p);
      expect(region().hidden).toBe(true);
    }
  });

  it("shows round k+1 of N, the sites' states, time per round and the ETA", () => {
    const { root, region, sites } = make(progress());
    expect(region().hidden).toBe(false);
    expect(region().parentElement!.getAttribute("data-testid")).toBe("flarenb-header");
    expect(byId(root, "flarenb-progress-round")!.textContent).toBe("round 1 of 5");
    expect(byId(root, "flarenb-progress-bar")!.hidden).toBe(false);
    expect(byId(root, "flarenb-progress-bar")!.getAttribute("aria-valuenow")).toBe("1");
    expect(sites()).toEqual([
      ["site-1", "reported", "site-1: reported"],
      ["site-2", "training", "site-2: training"],
      ["site-3", "silent", "site-3: silent"],
    ]);
    expect(byId(root, "flarenb-progress-site-site-2")!.dataset.state).toBe("training");
    expect(byId(root, "flarenb-progress-rate")!.textContent).toBe("≈ 12s per round");
    expect(byId(root, "flarenb-progress-eta")!.textContent).toBe("ETA ≈ 50s");
  });

  it("without a total: 'round k+1' and no bar; without timings: no rate or ETA", () => {
    const { root } = make(progress({ round: 2, total: null, round_seconds: null, eta_seconds: null }));
    expect(byId(root, "flarenb-progress-round")!.textContent).toBe("round 3");
    expect(byId(root, "flarenb-progress-bar")!.hidden).toBe(true);
    expect(byId(root, "flarenb-progress-rate")!.hidden).toBe(true);
    expect(byId(root, "flarenb-progress-eta")!.hidden).toBe(true);
  });

  it("follows the trait: rounds advance, site states change, {} hides it again", () => {
    const { model, root, region, sites } = make();
    expect(region().hidden).toBe(true);
    model.set("progress", progress({ round: 3, eta_seconds: 65 }));
    expect(region().hidden).toBe(false);
    expect(byId(root, "flarenb-progress-round")!.textContent).toBe("round 4 of 5");
    expect(byId(root, "flarenb-progress-eta")!.textContent).toBe("ETA ≈ 1m 05s");
    model.set("progress", progress({ round: 4, sites: { "site-1": "reported", "site-2": "reported" }, eta_seconds: null }));
    expect(byId(root, "flarenb-progress-round")!.textContent).toBe("round 5 of 5");
    expect(byId(root, "flarenb-progress-eta")!.hidden).toBe(true);
    expect(sites().map((s) => s[1])).toEqual(["reported", "reported"]);
    model.set("progress", {});
    expect(region().hidden).toBe(true);
  });

  it("site names from the kernel are text, never markup", () => {
    const name = "<img src=x onerror=alert(1)>";
    const { root, sites } = make(progress({ sites: { [name]: "training" } }));
    expect(sites()).toEqual([[name, "training", `${name}: training`]]);
    expect(root.querySelector("img")).toBeNull();
  });

  it("ignores what is not a progress (garbage from an old or broken kernel)", () => {
    expect(roundProgress({ round: "2" } as unknown as Progress)).toBeNull();
    expect(roundProgress({ round: -1 } as unknown as Progress)).toBeNull();
    expect(roundProgress({ round: 1, total: 0, sites: null } as unknown as Progress)).toEqual({
      round: 1,
      total: null,
      sites: {},
      round_seconds: null,
      eta_seconds: null,
    });
    const view = new ProgressView();
    view.render(null);
    expect(view.element.hidden).toBe(true);
  });

  it("dispose removes the progress listener with the header's", () => {
    const { model, header } = make(progress());
    header.dispose();
    expect(model.listenerCount()).toBe(0);
  });
});

describe("duration and value formats", () => {
  it.each([
    [0.44, "0.4s"],
    [9.96, "10s"],
    [12.4, "12s"],
    [65, "1m 05s"],
    [3725, "1h 02m 05s"],
  ])("approxDuration(%s) = %s", (s, text) => expect(approxDuration(s)).toBe(text));

  it.each([
    [0.912345, "0.9123"],
    [12.5, "12.5"],
    [0, "0"],
    [1234567, "1.23e+6"],
    [0.0001234, "1.23e-4"],
    [-3.14159, "-3.142"],
  ])("fmtValue(%s) = %s", (v, text) => expect(fmtValue(v)).toBe(text));
});
