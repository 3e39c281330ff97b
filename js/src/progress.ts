/**
 * The header's round progress (the `progress` trait): "round k of N" (k = the 0-based latest round with
 * results + 1), a thin bar, one small mark per site (reported / training / silent), "≈ X per round" and
 * "ETA ≈ …". Hidden while the trait is `{}`. Site names reach the DOM as text and attributes only.
 */
import { el, setText } from "./dom";
import { approxDuration } from "./format";
import type { Progress, RoundProgress } from "./types";

const finite = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);

/** The progress to show, or null when `progress` is `{}` (or not a progress at all). */
export function roundProgress(progress: Progress | undefined | null): RoundProgress | null {
  const p = progress as Partial<RoundProgress> | undefined | null;
  if (!p || !finite(p.round) || p.round < 0) return null;
  return {
    round: Math.floor(p.round),
    total: finite(p.total) && p.total > 0 ? Math.floor(p.total) : null,
    sites: p.sites && typeof p.sites === "object" ? p.sites : {},
    round_seconds: finite(p.round_seconds) && p.round_seconds >= 0 ? p.round_seconds : null,
    eta_seconds: finite(p.eta_seconds) && p.eta_seconds >= 0 ? p.eta_seconds : null,
  };
}

/** "round 1 of 5" for round 0 of 5; "round 3" without a total. */
export function roundText(p: RoundProgress): string {
  return p.total != null ? `round ${p.round + 1} of ${p.total}` : `round ${p.round + 1}`;
}

export class ProgressView {
  readonly element = el("div", "flarenb-progress", "flarenb-progress");
  private readonly round = el("span", "flarenb-progress-round", "flarenb-progress-round");
  private readonly bar = el("span", "flarenb-progress-bar", "flarenb-progress-bar");
  private readonly fill = el("span", "flarenb-progress-fill");
  private readonly sites = el("span", "flarenb-progress-sites", "flarenb-progress-sites");
  private readonly perRound = el("span", "flarenb-progress-rate", "flarenb-progress-rate");
  private readonly eta = el("span", "flarenb-progress-eta", "flarenb-progress-eta");
  /** the sites' states last drawn (the strip is rebuilt only when they change) */
  private sitesKey = "";

  constructor() {
    this.bar.appendChild(this.fill);
    this.bar.setAttribute("role", "progressbar");
    this.element.append(this.round, this.bar, this.sites, this.perRound, this.eta);
    this.element.hidden = true;
  }

  render(progress: Progress | undefined | null): void {
    const p = roundProgress(progress);
    this.element.hidden = p === null;
    if (!p) return;
    setText(this.round, roundText(p));
    this.bar.hidden = p.total == null;
    if (p.total != null) {
      const done = Math.min(p.round + 1, p.total);
      this.fill.style.width = `${(100 * done) / p.total}%`;
      this.bar.setAttribute("aria-valuemin", "0");
      this.bar.setAttribute("aria-valuemax", String(p.total));
      this.bar.setAttribute("aria-valuenow", String(done));
    }
    setText(this.perRound, p.round_seconds != null ? `≈ ${approxDuration(p.round_seconds)} per round` : "");
    this.perRound.hidden = p.round_seconds == null;
    setText(this.eta, p.eta_seconds != null ? `ETA ≈ ${approxDuration(p.eta_seconds)}` : "");
    this.eta.hidden = p.eta_seconds == null;
    this.renderSites(p.sites);
  }

  private renderSites(sites: RoundProgress["sites"]): void {
    const entries = Object.entries(sites).map(([site, state]) => [site, String(state)] as const);
    const key = JSON.stringify(entries);
    if (key === this.sitesKey) return;
    this.sitesKey = key;
    this.sites.replaceChildren();
    this.sites.hidden = entries.length === 0;
    for (const [site, state] of entries) {
      const mark = el("span", "flarenb-progress-site", `flarenb-progress-site-${site}`);
      mark.dataset.state = state;
      mark.dataset.site = site;
      mark.textContent = site;
      mark.title = `${site}: ${state}`;
      this.sites.appendChild(mark);
    }
  }
}
