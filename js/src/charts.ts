/**
 * Small line charts of the `metrics` trait, drawn as SVG by hand (no dependency): one chart per metric, one
 * polyline per site (the "aggregated" series bold, drawn on top), min/max labels on both axes, a legend and a
 * hover tooltip ("site · round r · value v"). Each polyline has at most MAX_POINTS points (min and max per
 * bucket), so a job of 1,000 rounds x 20 sites stays cheap. Metric and site names come from the kernel: they
 * reach the DOM through textContent and setAttribute only.
 */
import { el } from "./dom";
import { fmtValue } from "./format";
import type { MetricSeries } from "./types";

const SVG_NS = "http://www.w3.org/2000/svg";
/** The server's aggregate, drawn bold. */
export const AGGREGATED = "aggregated";
/** Most points of one polyline. */
export const MAX_POINTS = 300;
/** A chart with at most this many points draws a dot per point. */
export const MARKER_LIMIT = 400;
/** Distinct site colours (`data-color` 0..PALETTE_SIZE-1 in widget.css); later sites repeat them dashed. */
export const PALETTE_SIZE = 10;
/** viewBox size and plot margins */
const W = 360;
const H = 180;
const LEFT = 48;
const RIGHT = 10;
const TOP = 10;
const BOTTOM = 22;
/** how near (viewBox units) the pointer must be to a point for the tooltip */
const HOVER_RADIUS = 28;

export type Point = [number, number];

/** Points with finite numbers only, by round. */
export function cleanPoints(raw: unknown): Point[] {
  if (!Array.isArray(raw)) return [];
  const out: Point[] = [];
  let sorted = true;
  for (const p of raw) {
    if (!Array.isArray(p) || !Number.isFinite(p[0]) || !Number.isFinite(p[1])) continue;
    if (out.length && p[0] < out[out.length - 1][0]) sorted = false;
    out.push([p[0], p[1]]);
  }
  return sorted ? out : out.sort((a, b) => a[0] - b[0]);
}

/**
 * At most `max` points of `points` (sorted by round): the first, the last, and the minimum and maximum value
 * of each bucket between them, in order, so spikes survive.
 */
export function downsample(points: Point[], max = MAX_POINTS): Point[] {
  if (points.length <= max) return points;
  const inner = points.length - 2;
  const buckets = Math.max(1, Math.floor((max - 2) / 2));
  const out: Point[] = [points[0]];
  for (let b = 0; b < buckets; b++) {
    const start = 1 + Math.floor((b * inner) / buckets);
    const end = 1 + Math.floor(((b + 1) * inner) / buckets);
    if (end <= start) continue;
    let lo = start;
    let hi = start;
    for (let i = start + 1; i < end; i++) {
      if (points[i][1] < points[lo][1]) lo = i;
      if (points[i][1] > points[hi][1]) hi = i;
    }
    if (lo === hi) out.push(points[lo]);
    else out.push(points[Math.min(lo, hi)], points[Math.max(lo, hi)]);
  }
  out.push(points[points.length - 1]);
  return out;
}

/** The series by metric, then by site (in order of first appearance; a repeated series is merged). */
export function groupSeries(series: readonly MetricSeries[]): Map<string, Map<string, Point[]>> {
  const out = new Map<string, Map<string, Point[]>>();
  for (const s of series) {
    if (!s || typeof s !== "object") continue;
    const metric = String(s.metric ?? "");
    const site = String(s.site ?? "");
    if (!out.has(metric)) out.set(metric, new Map());
    const bySite = out.get(metric)!;
    const points = cleanPoints(s.points);
    const had = bySite.get(site);
    bySite.set(site, had ? cleanPoints([...had, ...points]) : points);
  }
  return out;
}

/** A colour per site, stable for the life of the view (the same site has the same colour in every chart). */
export class SiteColours {
  private readonly index = new Map<string, number>();

  of(site: string): number {
    if (!this.index.has(site)) this.index.set(site, this.index.size);
    return this.index.get(site)!;
  }
}

function svg<K extends keyof SVGElementTagNameMap>(tag: K, cls: string, attrs: Record<string, string | number> = {}) {
  const node = document.createElementNS(SVG_NS, tag);
  if (cls) node.setAttribute("class", cls);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

/** The tooltip text of one point. */
export const pointText = (site: string, [round, value]: Point): string =>
  `${site} · round ${round} · value ${fmtValue(value)}`;

interface Drawn {
  site: string;
  point: Point;
  x: number;
  y: number;
}

/** The drawn point nearest to (x, y) in viewBox units, within `radius`. */
export function nearest(drawn: readonly Drawn[], x: number, y: number, radius = HOVER_RADIUS): Drawn | null {
  let best: Drawn | null = null;
  let bestD = radius * radius;
  for (const d of drawn) {
    const dd = (d.x - x) ** 2 + (d.y - y) ** 2;
    if (dd <= bestD) {
      best = d;
      bestD = dd;
    }
  }
  return best;
}

/** The smallest and largest of `values`. */
function extent(values: number[]): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}

/** A scale's domain: the extent, widened when it is a single value. */
function domain([lo, hi]: [number, number]): [number, number] {
  if (lo !== hi) return [lo, hi];
  const pad = lo === 0 ? 1 : Math.abs(lo) * 0.05;
  return [lo - pad, hi + pad];
}

/** One chart: the metric's name, its SVG (frame, labels, a polyline per site, dots, hover) and the legend. */
export function buildChart(metric: string, bySite: Map<string, Point[]>, colours: SiteColours): HTMLElement {
  const chart = el("div", "flarenb-metric-chart", "flarenb-metric-chart");
  chart.setAttribute("data-metric", metric);
  const title = el("div", "flarenb-metric-title");
  title.textContent = metric;
  chart.appendChild(title);

  // sites in colour order, the aggregate last (on top)
  const sites = [...bySite.keys()].filter((s) => s !== AGGREGATED);
  for (const site of sites) colours.of(site); // new sites in order of appearance, before sorting
  sites.sort((a, b) => colours.of(a) - colours.of(b));
  if (bySite.has(AGGREGATED)) sites.push(AGGREGATED);
  const series = sites.map((site) => ({ site, points: downsample(bySite.get(site)!) }));
  const all = series.flatMap((s) => s.points);

  const plot = el("div", "flarenb-metric-plot");
  const root = svg("svg", "flarenb-metric-svg", { viewBox: `0 0 ${W} ${H}`, role: "img" });
  root.setAttribute("aria-label", `${metric} by round`);
  plot.appendChild(root);
  chart.appendChild(plot);
  const x0 = LEFT;
  const x1 = W - RIGHT;
  const y0 = TOP;
  const y1 = H - BOTTOM;
  root.appendChild(svg("rect", "flarenb-metric-frame", { x: x0, y: y0, width: x1 - x0, height: y1 - y0 }));
  if (all.length === 0) {
    const none = svg("text", "flarenb-metric-label", { x: (x0 + x1) / 2, y: (y0 + y1) / 2, "text-anchor": "middle" });
    none.textContent = "no values yet";
    root.appendChild(none);
  }

  const rounds = extent(all.map((p) => p[0]));
  const values = extent(all.map((p) => p[1]));
  const [rMin, rMax] = domain(rounds);
  const [vMin, vMax] = domain(values);
  const sx = (r: number) => x0 + ((r - rMin) / (rMax - rMin)) * (x1 - x0);
  const sy = (v: number) => y1 - ((v - vMin) / (vMax - vMin)) * (y1 - y0);
  const label = (axis: string, text: string, x: number, y: number, anchor: string) => {
    const t = svg("text", "flarenb-metric-label", { x, y, "text-anchor": anchor, "data-axis": axis });
    t.textContent = text;
    root.appendChild(t);
  };
  if (all.length) {
    label("y-max", fmtValue(values[1]), x0 - 4, y0 + 8, "end");
    label("y-min", fmtValue(values[0]), x0 - 4, y1, "end");
    label("x-min", `round ${rounds[0]}`, x0, H - 6, "start");
    label("x-max", `round ${rounds[1]}`, x1, H - 6, "end");
  }

  const drawn: Drawn[] = [];
  const lines = svg("g", "flarenb-metric-lines");
  const dots = svg("g", "flarenb-metric-points");
  const markers = all.length <= MARKER_LIMIT;
  for (const { site, points } of series) {
    const agg = site === AGGREGATED;
    const idx = agg ? -1 : colours.of(site);
    const attrs = (cls: string) => (agg ? `${cls} aggregated` : cls);
    const coords = points.map((p) => [sx(p[0]), sy(p[1])] as const);
    const line = svg("polyline", attrs("flarenb-metric-series"), {
      points: coords.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(" "),
      "data-site": site,
      "data-color": agg ? "aggregated" : idx % PALETTE_SIZE,
      "data-points": points.length,
      "stroke-width": agg ? 3 : 1.4,
    });
    if (!agg && Math.floor(idx / PALETTE_SIZE) % 2 === 1) line.setAttribute("data-dash", "1");
    const tip = svg("title", "");
    tip.textContent = points.length ? pointText(site, points[points.length - 1]) : site;
    line.appendChild(tip);
    lines.appendChild(line);
    points.forEach((point, i) => {
      const [x, y] = coords[i];
      drawn.push({ site, point, x, y });
      if (!markers) return;
      dots.appendChild(
        svg("circle", attrs("flarenb-metric-point"), {
          cx: x.toFixed(1),
          cy: y.toFixed(1),
          r: agg ? 3 : 2.2,
          "data-site": site,
          "data-color": agg ? "aggregated" : idx % PALETTE_SIZE,
        }),
      );
    });
  }
  root.append(lines, dots);
  hover(root, plot, drawn);
  chart.appendChild(legend(series.map((s) => s.site), colours));
  return chart;
}

/** The tooltip of the point nearest to the pointer, and a ring around it. */
function hover(root: SVGSVGElement, plot: HTMLElement, drawn: Drawn[]): void {
  const ring = svg("circle", "flarenb-metric-hover", { r: 4.5, cx: 0, cy: 0 });
  ring.style.display = "none";
  root.appendChild(ring);
  const tip = el("div", "flarenb-metric-tip", "flarenb-metric-tip");
  tip.hidden = true;
  plot.appendChild(tip);
  const hide = () => {
    tip.hidden = true;
    ring.style.display = "none";
  };
  root.addEventListener("mouseleave", hide);
  root.addEventListener("mousemove", (ev) => {
    const box = root.getBoundingClientRect();
    if (!box.width || !box.height) return hide();
    const hit = nearest(drawn, ((ev.clientX - box.left) * W) / box.width, ((ev.clientY - box.top) * H) / box.height);
    if (!hit) return hide();
    tip.textContent = pointText(hit.site, hit.point);
    tip.dataset.site = hit.site;
    tip.style.left = `${(100 * hit.x) / W}%`;
    tip.style.top = `${(100 * hit.y) / H}%`;
    tip.classList.toggle("flarenb-metric-tip-left", hit.x > W / 2);
    tip.hidden = false;
    ring.setAttribute("cx", hit.x.toFixed(1));
    ring.setAttribute("cy", hit.y.toFixed(1));
    ring.style.display = "";
  });
}

function legend(sites: string[], colours: SiteColours): HTMLElement {
  const list = el("ul", "flarenb-metric-legend");
  const ordered = sites.includes(AGGREGATED) ? [AGGREGATED, ...sites.filter((s) => s !== AGGREGATED)] : sites;
  for (const site of ordered) {
    const agg = site === AGGREGATED;
    const item = el("li", agg ? "flarenb-metric-legend-item aggregated" : "flarenb-metric-legend-item");
    item.setAttribute("data-site", site);
    const swatch = el("span", "flarenb-metric-swatch");
    swatch.setAttribute("data-color", agg ? "aggregated" : String(colours.of(site) % PALETTE_SIZE));
    const name = el("span", "flarenb-metric-site");
    name.textContent = site;
    item.append(swatch, name);
    list.appendChild(item);
  }
  return list;
}

/** Every chart of `series`, in order of the metrics' first appearance. */
export function buildCharts(series: readonly MetricSeries[], colours: SiteColours): HTMLElement[] {
  const grouped = groupSeries(series);
  // colours by each site's first appearance in any metric
  for (const bySite of grouped.values()) for (const site of bySite.keys()) if (site !== AGGREGATED) colours.of(site);
  return [...grouped].map(([metric, bySite]) => buildChart(metric, bySite, colours));
}
