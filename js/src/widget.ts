/**
 * flarenb LogView front end: a live per-site log viewer of one federated job.
 *
 * Stable test hooks (data-testid), for Playwright and the vitest suite:
 *   flarenb-logview                 the widget root (data-status: submitted|running|completed|failed|aborted|other)
 *   flarenb-header                  the header
 *   flarenb-job-name, flarenb-job-id
 *   flarenb-status                  the job status text (data-status as above)
 *   flarenb-elapsed                 elapsed time (ticks while running; the job's duration once it ended)
 *   flarenb-site-states             list of site states
 *   flarenb-site-state-<site>       one site's state (data-state: streaming|quiet|silent|done|unavailable)
 *   flarenb-first-error-<site>      "first error" link of a site (present once it logged an ERROR/traceback)
 *   flarenb-progress                round progress (class flarenb-progress; hidden while the `progress` trait is {})
 *   flarenb-progress-round          "round k+1 of N" / "round k+1"; flarenb-progress-bar (hidden without a total)
 *   flarenb-progress-site-<site>    one site's round state (class flarenb-progress-site, data-site,
 *                                   data-state: reported|training|silent; text: the site)
 *   flarenb-progress-rate           "≈ X per round"; flarenb-progress-eta: "ETA ≈ X" (hidden when unknown)
 *   flarenb-lane-tabs               the tab list
 *   flarenb-lane-tab-all-sites      the interleaved "All sites" tab
 *   flarenb-lane-tab-<site>         one site's tab (aria-selected="true" when active)
 *   flarenb-lane-all-sites          the lane container while "All sites" (every site, ordered by time) is shown
 *   flarenb-lane-<site>             the lane container while that site is shown
 *   flarenb-line                    one log line (data-site, data-seq, data-level; <mark class="flarenb-match"> for search hits)
 *   flarenb-gap                     "N lines skipped (still downloadable)" / "not received" marker (data-reason: skipped|missed;
 *                                   data-first, data-last: the seqs of the lines it stands for)
 *   flarenb-empty                   "No lines yet." / "No line matches the filter."
 *   flarenb-show-earlier            top of a lane: "⋯ N earlier lines: show M more" (only a window of the lines
 *                                   the browser holds is rendered; hidden when there are none above it)
 *   flarenb-level-filter            <select> of the minimum level ("" = all)
 *   flarenb-search                  search box; flarenb-search-count: "N matching lines"
 *   flarenb-found                   below the lane: lines the kernel found that this view does not hold (search, level
 *                                   filter, first error; data-state: pending|done|error); flarenb-found-summary ("N
 *                                   matching lines not shown here (from the kernel)"), flarenb-found-line (one found
 *                                   line, data-site, data-seq; a click shows its skip marker), flarenb-found-close
 *   flarenb-jump-error              jump to the first ERROR/traceback of the active lane
 *   flarenb-follow                  follow/resume button (aria-pressed="true" while following)
 *   flarenb-metrics-toggle          "Metrics" (hidden while the `metrics` trait has no series; aria-pressed when open)
 *   flarenb-metrics                 the metrics panel (below the lane; hidden until toggled)
 *   flarenb-metric-chart            one chart per metric (data-metric); inside it: .flarenb-metric-title, an <svg>
 *                                   with one polyline.flarenb-metric-series per site (data-site, data-color,
 *                                   data-points; class "aggregated" and a larger stroke-width for the aggregate),
 *                                   text.flarenb-metric-label (data-axis: y-min|y-max|x-min|x-max),
 *                                   circle.flarenb-metric-point (data-site; small charts only), and
 *                                   li.flarenb-metric-legend-item (data-site)
 *   flarenb-metric-tip              hover tooltip of a chart: "site · round r · value v"
 *   flarenb-evicted-notice          "N older lines left this view (download for the complete log)"
 *   flarenb-download                ask the kernel to write <job_id>_logs/<site>.log
 *   flarenb-download-browser        save the lines held by the browser (Blob), works while the kernel is busy
 *   flarenb-download-result         the paths written (or the error); data-state: pending|done|error
 *   flarenb-unbuilt                 (Python fallback only) "front end is not built" message
 *
 * Security: log text, site and metric names come from remote sites; they only reach the DOM through
 * textContent / text nodes / setAttribute, never as markup.
 */
import type { AnyModel, InitializeProps, RenderProps } from "@anywidget/types";
import { connectStore } from "./store";
import type { WidgetModel } from "./types";
import { LogViewUI } from "./view";
import "./widget.css";

export type { WidgetModel } from "./types";

/** Model lifecycle: the line store accumulates even while no view is rendered. */
function initialize({ model }: InitializeProps<WidgetModel>): () => void {
  const { dispose } = connectStore(model);
  return dispose;
}

function render({ model, el }: RenderProps<WidgetModel>): () => void {
  const { store } = connectStore(model as AnyModel<WidgetModel>);
  const ui = new LogViewUI(model, store);
  el.appendChild(ui.root);
  return () => ui.dispose();
}

export default { initialize, render };
