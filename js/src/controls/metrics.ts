/**
 * "Metrics": a toggle (shown once the `metrics` trait has series) and a panel of line charts, one per metric
 * (`charts.ts`). The kernel resends the whole trait as it grows; the panel redraws at most once per animation
 * frame, and only while it is open (a change while closed is drawn when it opens).
 */
import { button, el, listen } from "../dom";
import { buildCharts, SiteColours } from "../charts";
import { FrameTask } from "../frames";
import type { MetricSeries } from "../types";
import type { ControlFactory } from "./control";

export const metrics: ControlFactory = ({ model }) => {
  const btn = button(
    "flarenb-button flarenb-metrics-toggle",
    "flarenb-metrics-toggle",
    "Metrics",
    "Show the metrics of each round, by site",
  );
  const panel = el("div", "flarenb-metrics", "flarenb-metrics");
  panel.setAttribute("role", "region");
  panel.setAttribute("aria-label", "Metrics");
  const colours = new SiteColours();
  let open = false;
  let dirty = true;

  const series = (): MetricSeries[] => {
    const s = model.get("metrics")?.series;
    return Array.isArray(s) ? s : [];
  };
  /** where the pointer is over a chart: its tooltip survives a redraw */
  let pointer: { metric: string; clientX: number; clientY: number } | null = null;
  panel.addEventListener("mousemove", (ev) => {
    const target = ev.target instanceof Element ? ev.target : null;
    const chart = target?.closest("svg") ? target.closest(".flarenb-metric-chart") : null;
    const metric = chart?.getAttribute("data-metric");
    pointer = metric != null ? { metric, clientX: ev.clientX, clientY: ev.clientY } : null;
  });
  panel.addEventListener("mouseleave", () => (pointer = null));
  const draw = () => {
    dirty = false;
    const charts = buildCharts(series(), colours);
    panel.replaceChildren(...charts);
    const hovered = pointer && charts.find((c) => c.getAttribute("data-metric") === pointer!.metric);
    const { clientX, clientY } = pointer ?? {};
    hovered?.querySelector("svg")?.dispatchEvent(new MouseEvent("mousemove", { clientX, clientY }));
  };
  const frame = new FrameTask(draw);
  /** the toggle and the panel follow `open` and whether there is anything to show */
  const sync = () => {
    const has = series().length > 0;
    btn.hidden = !has;
    panel.hidden = !(open && has);
    btn.setAttribute("aria-pressed", String(!panel.hidden));
    btn.setAttribute("aria-expanded", String(!panel.hidden));
  };

  btn.addEventListener("click", () => {
    open = !open;
    sync();
    if (panel.hidden) return frame.cancel();
    if (dirty) {
      frame.cancel();
      draw();
    }
  });
  const stop = listen(model, ["change:metrics"], () => {
    dirty = true;
    sync();
    if (!panel.hidden) frame.schedule();
  });
  sync();
  return {
    nodes: [btn],
    panel,
    dispose() {
      stop();
      frame.cancel();
    },
  };
};
