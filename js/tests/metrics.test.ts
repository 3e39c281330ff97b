import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { buildChart, cleanPoints, downsample, MAX_POINTS, SiteColours, type Point } from "../src/charts";
import type { Control } from "../src/controls/control";
import { metrics as metricsControl } from "../src/controls/metrics";
import { fmtValue } from "../src/format";
import type { LaneWindow } from "../src/lanes";
import { LogStore } from "../src/store";
import type { MetricSeries, Metrics } from "../src/types";
import { FakeModel } from "./fake-model";

let frames: FrameRequestCallback[] = [];
beforeEach(() => {
  frames = [];
  vi.stubGlobal("requestAnimationFrame", (cb: FrameRequestCallback) => frames.push(cb));
  vi.stubGlobal("cancelAnimationFrame", () => {});
});
afterEach(() => {
  vi.unstubAllGlobals();
  document.body.replaceChildren();
});

const runFrames = () => frames.splice(0).forEach((cb) => cb(0));
const click = (node: HTMLElement) => node.dispatchEvent(new MouseEvent("click", { bubbles: true }));
const pts = (...values: number[]): Point[] => values.map((v, i) => [i, v]);

function make(metrics?: Metrics) {
  const model = new FakeModel(metrics === undefined ? {} : { metrics });
  const root = document.createElement("div");
  const control: Control = metricsControl({ model: model.asModel(), store: new LogStore(), root, lanes: {} as LaneWindow });
  const toggle = control.nodes[0];
  const panel = control.panel!;
  root.append(toggle, panel);
  document.body.appendChild(root);
  const charts = () => [...panel.querySelectorAll<HTMLElement>(".flarenb-metric-chart")];
  const lines = (chart: Element) => [...chart.querySelectorAll<SVGPolylineElement>("polyline.flarenb-metric-series")];
  return { model, root, control, toggle, panel, charts, lines };
}

const basic = (): Metrics => ({
  series: [
    { metric: "accuracy", site: "site-1", points: pts(0.5, 0.6, 0.7) },
    { metric: "accuracy", site: "site-2", points: pts(0.4, 0.55, 0.65) },
    { metric: "accuracy", site: "aggregated", points: pts(0.45, 0.58, 0.68) },
    { metric: "loss", site: "site-1", points: pts(1.2, 0.9, 0.7) },
    { metric: "loss", site: "site-2", points: pts(1.3, 1.0, 0.8) },
  ],
});

describe("metrics control", () => {
  it("its toggle is hidden while there are no series; the panel opens on click", () => {
    for (const m of [undefined, {}, { series: [] }] as Array<Metrics | undefined>) {
      const { toggle, panel } = make(m);
      expect(toggle.getAttribute("data-testid")).toBe("flarenb-metrics-toggle");
      expect(toggle.hidden).toBe(true);
      expect(panel.hidden).toBe(true);
    }
    const { model, toggle, panel, charts } = make({});
    model.set("metrics", basic());
    expect(toggle.hidden).toBe(false);
    expect(toggle.textContent).toBe("Metrics");
    expect(panel.hidden).toBe(true);
    expect(frames).toHaveLength(0); // nothing drawn while closed
    click(toggle);
    expect(panel.hidden).toBe(false);
    expect(toggle.getAttribute("aria-pressed")).toBe("true");
    expect(charts()).toHaveLength(2);
    click(toggle);
    expect(panel.hidden).toBe(true);
    expect(toggle.getAttribute("aria-pressed")).toBe("false");
  });

  it("draws one chart per metric and one polyline per site; the aggregate bold, labels and a legend", () => {
    const { toggle, charts, lines } = make(basic());
    click(toggle);
    expect(charts().map((c) => c.getAttribute("data-metric"))).toEqual(["accuracy", "loss"]);
    const [acc, loss] = charts();
    expect(acc.querySelector(".flarenb-metric-title")!.textContent).toBe("accuracy");
    expect(lines(acc).map((l) => l.getAttribute("data-site"))).toEqual(["site-1", "site-2", "aggregated"]);
    expect(lines(loss).map((l) => l.getAttribute("data-site"))).toEqual(["site-1", "site-2"]);
    const agg = lines(acc)[2];
    expect(agg.classList.contains("aggregated")).toBe(true);
    expect(lines(acc)[0].classList.contains("aggregated")).toBe(false);
    expect(Number(agg.getAttribute("stroke-width"))).toBeGreaterThan(Number(lines(acc)[0].getAttribute("stroke-width")));
    expect(lines(acc)[0].getAttribute("points")!.split(" ")).toHaveLength(3);
    // the same site has the same colour in every chart; the aggregate has its own
    expect(lines(acc).map((l) => l.getAttribute("data-color"))).toEqual(["0", "1", "aggregated"]);
    expect(lines(loss).map((l) => l.getAttribute("data-color"))).toEqual(["0", "1"]);
    const labels = Object.fromEntries(
      [...acc.querySelectorAll("text.flarenb-metric-label")].map((t) => [t.getAttribute("data-axis"), t.textContent]),
    );
    expect(labels).toEqual({ "y-max": "0.7", "y-min": "0.4", "x-min": "round 0", "x-max": "round 2" });
    const legend = [...acc.querySelectorAll<HTMLElement>(".flarenb-metric-legend-item")];
    expect(legend.map((i) => [i.dataset.site, i.textContent])).toEqual([
      ["aggregated", "aggregated"],
      ["site-1", "site-1"],
      ["site-2", "site-2"],
    ]);
    // a small chart has a dot per point; each line's <title> tells its latest point
    expect(acc.querySelectorAll("circle.flarenb-metric-point")).toHaveLength(9);
    expect(lines(acc)[0].querySelector("title")!.textContent).toBe("site-1 · round 2 · value 0.7");
  });

  it("hovering near a point shows 'site · round r · value v' (kept across a redraw); leaving hides it", () => {
    const box = { left: 0, top: 0, width: 720, height: 360, right: 720, bottom: 360, x: 0, y: 0, toJSON() {} };
    const rect = vi.spyOn(Element.prototype, "getBoundingClientRect").mockReturnValue(box as DOMRect);
    const { model, toggle, charts } = make(basic());
    click(toggle);
    const chart = charts()[0];
    const svg = chart.querySelector("svg")!;
    const dot = [...chart.querySelectorAll("circle.flarenb-metric-point")].find((c) => c.getAttribute("data-site") === "site-2")!;
    const tip = () => charts()[0].querySelector<HTMLElement>(".flarenb-metric-tip")!;
    expect(tip().hidden).toBe(true);
    // the first site-2 dot: round 0, value 0.4 (viewBox units x2 on screen)
    const at = { clientX: 2 * Number(dot.getAttribute("cx")), clientY: 2 * Number(dot.getAttribute("cy")), bubbles: true };
    svg.dispatchEvent(new MouseEvent("mousemove", at));
    expect(tip().hidden).toBe(false);
    expect(tip().textContent).toBe("site-2 · round 0 · value 0.4");
    // far from every point: no tooltip
    svg.dispatchEvent(new MouseEvent("mousemove", { clientX: 400, clientY: 20, bubbles: true }));
    expect(tip().hidden).toBe(true);
    svg.dispatchEvent(new MouseEvent("mousemove", at));
    // the kernel resends the trait: the new chart shows the tooltip at the same place
    model.set("metrics", basic());
    runFrames();
    expect(charts()[0]).not.toBe(chart);
    expect(tip().hidden).toBe(false);
    expect(tip().textContent).toBe("site-2 · round 0 · value 0.4");
    charts()[0].querySelector("svg")!.dispatchEvent(new MouseEvent("mouseleave"));
    expect(tip().hidden).toBe(true);
    rect.mockRestore();
  });

  it("names from the kernel are text: a hostile metric or site name creates no element", () => {
    const evil = "<img src=x onerror=alert(1)>";
    const { root, toggle, charts, lines } = make({ series: [{ metric: evil, site: evil, points: pts(1, 2) }] });
    click(toggle);
    const [chart] = charts();
    expect(chart.getAttribute("data-metric")).toBe(evil);
    expect(chart.querySelector(".flarenb-metric-title")!.textContent).toBe(evil);
    expect(lines(chart)[0].getAttribute("data-site")).toBe(evil);
    expect(chart.querySelector(".flarenb-metric-legend-item")!.textContent).toBe(evil);
    expect(root.querySelector("img")).toBeNull();
    expect(document.querySelector("img")).toBeNull();
  });

  it("redraws on a trait change once per animation frame while open; a change while closed waits for opening", () => {
    const { model, toggle, panel, charts, lines } = make(basic());
    click(toggle);
    const grow = (n: number): Metrics => ({
      series: [
        ...basic().series!,
        { metric: "accuracy", site: "site-3", points: pts(...Array.from({ length: n }, (_, i) => i / n)) },
        { metric: "f1", site: "aggregated", points: pts(0.3) },
      ],
    });
    model.set("metrics", grow(3));
    model.set("metrics", grow(4));
    expect(frames).toHaveLength(1); // coalesced
    expect(charts()).toHaveLength(2); // not drawn yet
    runFrames();
    expect(charts().map((c) => c.getAttribute("data-metric"))).toEqual(["accuracy", "loss", "f1"]);
    expect(lines(charts()[0]).map((l) => l.getAttribute("data-site"))).toEqual(["site-1", "site-2", "site-3", "aggregated"]);
    expect(lines(charts()[0])[2].getAttribute("points")!.split(" ")).toHaveLength(4);
    click(toggle); // close
    model.set("metrics", basic());
    expect(frames).toHaveLength(0);
    expect(charts()).toHaveLength(3); // stale but hidden
    click(toggle);
    expect(panel.hidden).toBe(false);
    expect(charts()).toHaveLength(2);
    // the series going away hides the toggle and the panel
    model.set("metrics", {});
    expect(toggle.hidden).toBe(true);
    expect(panel.hidden).toBe(true);
  });

  it("a job of 1,000 rounds x 20 sites x 5 metrics draws at most MAX_POINTS points per polyline, quickly", () => {
    const series: MetricSeries[] = [];
    for (let m = 0; m < 5; m++) {
      for (let s = 0; s < 20; s++) {
        const points = Array.from({ length: 1000 }, (_, r) => [r, Math.sin(r / 50 + s) + m + (r === 777 ? 5 : 0)] as [number, number]);
        series.push({ metric: `metric-${m}`, site: `site-${s}`, points });
      }
      series.push({ metric: `metric-${m}`, site: "aggregated", points: Array.from({ length: 1000 }, (_, r) => [r, m] as [number, number]) });
    }
    const { model, toggle, charts, lines } = make({});
    model.set("metrics", { series });
    const t0 = performance.now();
    click(toggle);
    const took = performance.now() - t0;
    expect(charts()).toHaveLength(5);
    for (const chart of charts()) {
      expect(lines(chart)).toHaveLength(21);
      for (const line of lines(chart)) {
        const n = line.getAttribute("points")!.split(" ").length;
        expect(n).toBeLessThanOrEqual(MAX_POINTS);
        expect(Number(line.getAttribute("data-points"))).toBe(n);
      }
      expect(chart.querySelectorAll("circle.flarenb-metric-point")).toHaveLength(0); // no dot per point
    }
    // the spike at round 777 survives downsampling: it is the y maximum
    const top = Math.max(...series.filter((s) => s.metric === "metric-0").flatMap((s) => s.points.map((p) => p[1])));
    expect(charts()[0].querySelector('[data-axis="y-max"]')!.textContent).toBe(fmtValue(top));
    expect(took).toBeLessThan(5000); // generous: a shared, loaded machine
  });

  it("dispose stops listening and cancels a pending redraw", () => {
    const { model, control, toggle } = make(basic());
    click(toggle);
    model.set("metrics", basic());
    expect(frames).toHaveLength(1);
    control.dispose!();
    expect(model.listenerCount()).toBe(0);
  });
});

describe("chart data", () => {
  it("downsample keeps the first and last points and every bucket's min and max, in order", () => {
    const points: Point[] = Array.from({ length: 1000 }, (_, r) => [r, (r * 7919) % 101]);
    points[500] = [500, -50];
    points[501] = [501, 500];
    const out = downsample(points);
    expect(out.length).toBeLessThanOrEqual(MAX_POINTS);
    expect(out[0]).toEqual([0, 0]);
    expect(out[out.length - 1]).toEqual(points[999]);
    expect(out).toContainEqual([500, -50]);
    expect(out).toContainEqual([501, 500]);
    expect(out.map((p) => p[0])).toEqual([...out.map((p) => p[0])].sort((a, b) => a - b));
    const few = pts(1, 2, 3);
    expect(downsample(few)).toBe(few);
    expect(downsample(points, 10).length).toBeLessThanOrEqual(10);
  });

  it("draws a single round, a constant metric and a series without values without NaN", () => {
    const chart = buildChart(
      "m",
      new Map<string, Point[]>([
        ["site-1", [[0, 2]]],
        ["site-2", [[0, 2]]],
        ["site-3", []],
      ]),
      new SiteColours(),
    );
    const points = [...chart.querySelectorAll("polyline")].map((l) => l.getAttribute("points"));
    expect(points).toEqual(["199.0,84.0", "199.0,84.0", ""]); // centred
    expect(chart.innerHTML).not.toContain("NaN");
    expect(chart.querySelector('[data-axis="y-max"]')!.textContent).toBe("2");
    const empty = buildChart("none", new Map([["site-1", []]]), new SiteColours());
    expect(empty.querySelector("text")!.textContent).toBe("no values yet");
    expect(empty.innerHTML).not.toContain("NaN");
  });

  it("cleanPoints drops what is not a finite [round, value] and sorts by round", () => {
    const raw = [[2, 0.2], [0, 0.0], ["1", 1], [1, null], null, [3, Infinity], [1, 0.1]];
    expect(cleanPoints(raw)).toEqual([[0, 0], [1, 0.1], [2, 0.2]]);
    expect(cleanPoints(undefined)).toEqual([]);
  });
});
