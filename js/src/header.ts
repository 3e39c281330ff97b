/**
 * The status header: job name and id, status, elapsed time, the follower's problem, and one state per site
 * (with a "first error" button for each site that logged an ERROR or a traceback), and the round progress
 * (`progress.ts`) while the kernel knows it. A small "ⓘ" at the end of the title is the view's debug info: how the
 * kernel follows the logs (`source_info`, one line), in its tooltip and, opened, as text.
 */
import type { AnyModel } from "@anywidget/types";
import { el, listen, setText } from "./dom";
import { elapsedText, siteStateLabel, statusCategory } from "./format";
import { ProgressView } from "./progress";
import { siteList } from "./sites";
import type { LogStore } from "./store";
import type { Entry, WidgetModel } from "./types";
import { isTerminal, VIEW_STATES } from "./vocab";

export class Header {
  readonly element = el("div", "flarenb-header", "flarenb-header");
  private readonly jobName = el("span", "flarenb-job-name", "flarenb-job-name");
  private readonly jobId = el("span", "flarenb-job-id", "flarenb-job-id");
  private readonly status = el("span", "flarenb-status", "flarenb-status");
  private readonly elapsed = el("span", "flarenb-elapsed", "flarenb-elapsed");
  private readonly problem = el("span", "flarenb-problem", "flarenb-problem");
  private readonly sourceInfo = el("details", "flarenb-source-info", "flarenb-source-info");
  private readonly sourceInfoText = el("span", "flarenb-source-info-text", "flarenb-source-info-text");
  private readonly siteStates = el("ul", "flarenb-site-states", "flarenb-site-states");
  private readonly progress = new ProgressView();
  /** which sites have a "first error" button (re-render the site states only when it changes) */
  private errorKey = "";
  private readonly disposers: Array<() => void> = [];

  /** `root`: the widget root (data-status, finished); `onFirstError`: a site's "first error" button. */
  constructor(
    private readonly model: AnyModel<WidgetModel>,
    private readonly store: LogStore,
    private readonly root: HTMLElement,
    private readonly onFirstError: (site: string) => void,
    private readonly now: () => number = () => Date.now() / 1000,
  ) {
    const title = el("div", "flarenb-title");
    const summary = el("summary", "flarenb-source-info-mark");
    summary.textContent = "ⓘ";
    summary.setAttribute("aria-label", "how the logs are followed");
    this.sourceInfo.append(summary, this.sourceInfoText);
    title.append(this.jobName, this.jobId, this.status, this.elapsed, this.problem, this.sourceInfo);
    this.element.append(title, this.progress.element, this.siteStates);
    const fields = ["job_id", "job_name", "status", "start_ts", "end_ts", "duration", "live", "problem", "source_info"];
    this.disposers.push(listen(model, fields.map((f) => `change:${f}`), () => this.render()));
    this.disposers.push(listen(model, ["change:site_states", "change:sites"], () => this.renderSiteStates()));
    this.disposers.push(listen(model, ["change:progress"], () => this.renderProgress()));
    const timer = setInterval(() => this.tick(), 1000);
    this.disposers.push(() => clearInterval(timer));
    this.render();
    this.renderSiteStates();
    this.renderProgress();
  }

  dispose(): void {
    for (const d of this.disposers.splice(0)) d();
  }

  render(): void {
    const m = this.model;
    this.jobName.textContent = m.get("job_name") || "";
    this.jobName.hidden = !m.get("job_name");
    this.jobId.textContent = m.get("job_id") || "";
    const status = m.get("status") || "";
    this.status.textContent = status;
    this.status.dataset.status = statusCategory(status);
    this.root.dataset.status = statusCategory(status);
    this.root.classList.toggle("flarenb-finished", isTerminal(status) || !m.get("live"));
    const problem = m.get("problem") || "";
    this.problem.textContent = problem; // text, never HTML
    this.problem.hidden = problem === "";
    this.renderSourceInfo();
    this.renderElapsed();
  }

  /** The debug info: hidden while the kernel has not said how it follows; text (and a tooltip), never HTML. */
  private renderSourceInfo(): void {
    const info = this.model.get("source_info") || "";
    const title = info ? `followed by: ${info}` : "";
    setText(this.sourceInfoText, info);
    if (this.sourceInfo.title !== title) this.sourceInfo.title = title;
    this.sourceInfo.hidden = info === "";
  }

  renderProgress(): void {
    this.progress.render(this.model.get("progress"));
  }

  private renderElapsed(): void {
    const m = this.model;
    const text = elapsedText(m.get("status") || "", m.get("start_ts"), m.get("end_ts"), m.get("duration"), this.now());
    setText(this.elapsed, text);
    this.elapsed.hidden = this.elapsed.textContent === "";
  }

  renderSiteStates(): void {
    const states = this.model.get("site_states") ?? {};
    const now = this.now();
    this.siteStates.replaceChildren();
    this.errorKey = this.errorSites();
    for (const site of siteList(this.model, this.store)) {
      const st = states[site];
      const item = el("li", "flarenb-site-state", `flarenb-site-state-${site}`);
      item.dataset.state = st?.state ?? VIEW_STATES.SILENT;
      const name = el("span", "flarenb-site-name");
      name.textContent = site;
      const label = el("span", "flarenb-site-label");
      label.textContent = siteStateLabel(st, now);
      item.append(name, label);
      if (this.hasErrors(site)) {
        const btn = el("button", "flarenb-button flarenb-first-error", `flarenb-first-error-${site}`);
        btn.type = "button";
        btn.textContent = "⚠ first error";
        btn.addEventListener("click", () => this.onFirstError(site));
        item.appendChild(btn);
      }
      this.siteStates.appendChild(item);
    }
  }

  /** Entries reached the view: "first error" buttons follow errors arriving and leaving the store. */
  entries(added: Entry[], evicted: Entry[]): void {
    const errors = evicted.length || added.some((e) => e.kind === "line" && e.isError);
    if (errors && this.errorSites() !== this.errorKey) this.renderSiteStates();
  }

  private hasErrors(site: string): boolean {
    return this.store.errorEvicted.has(site) || this.store.firstError(site) !== null;
  }

  private errorSites(): string {
    return siteList(this.model, this.store).map((s) => (this.hasErrors(s) ? "1" : "0")).join("");
  }

  /** Every second: the running job's elapsed time and the "quiet for ..." labels. */
  private tick(): void {
    const status = this.model.get("status") || "";
    if (this.model.get("end_ts") == null && !isTerminal(status)) this.renderElapsed();
    const states = this.model.get("site_states") ?? {};
    if (Object.values(states).some((s) => s && s.state === VIEW_STATES.QUIET)) this.renderSiteStates();
  }
}
