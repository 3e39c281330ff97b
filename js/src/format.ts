/** Small pure helpers: time formatting, status categories, DOM construction of a line. */
import { parseAnsi, styleClasses } from "./ansi";
import type { Entry, SiteState } from "./types";
import { isTerminal, VIEW_STATES } from "./vocab";

export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (h > 0) return `${h}h ${String(m).padStart(2, "0")}m ${String(sec).padStart(2, "0")}s`;
  if (m > 0) return `${m}m ${String(sec).padStart(2, "0")}s`;
  return `${sec}s`;
}

/** A rough duration: "0.4s", "12s", "1m 05s" (tenths below 10 s; `formatDuration` above). */
export function approxDuration(seconds: number): string {
  if (seconds < 10) return `${Math.max(0, Math.round(seconds * 10) / 10)}s`;
  return formatDuration(Math.round(seconds));
}

/** A metric value in at most 4 significant digits: "0.9123", "12.5", "1.23e+6". */
export function fmtValue(v: number): string {
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(2);
  return String(Number(v.toPrecision(4)));
}

/** Seconds of NVFlare's duration text (`str(timedelta)`: "0:00:09.334051", "1 day, 2:03:04"); null otherwise. */
export function parseDuration(text: string | null | undefined): number | null {
  const m = /^\s*(?:(-?\d+) days?, )?(\d+):(\d\d):(\d\d(?:\.\d+)?)\s*$/.exec(text ?? "");
  if (!m) return null;
  return Number(m[1] ?? 0) * 86400 + Number(m[2]) * 3600 + Number(m[3]) * 60 + Number(m[4]);
}

/**
 * The header's elapsed time. A finished job shows its duration (NVFlare's, else end - start) whenever it is
 * looked at; a running one ticks from its start. "" when nothing is known.
 */
export function elapsedText(
  status: string,
  start: number | null,
  end: number | null,
  duration: string | null,
  now: number,
): string {
  const finished = isTerminal(status) || end != null;
  const took = finished ? parseDuration(duration) : null;
  if (took != null) return formatDuration(took);
  if (start != null) return formatDuration((end ?? now) - start);
  return duration ?? "";
}

/** Milliseconds of a log timestamp ("2024-05-01 12:00:01,250", ISO with "T"/"."), as wall-clock digits; else null. */
export function parseTs(ts: string | null | undefined): number | null {
  const m = /(\d{4})-(\d\d)-(\d\d)[ T](\d\d):(\d\d):(\d\d)(?:[.,](\d+))?/.exec(ts ?? "");
  if (!m) return null;
  const ms = m[7] ? Number(`0.${m[7]}`) * 1000 : 0;
  return Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]) + ms;
}

/** "running", "completed", "failed", "aborted", "submitted" or "other": for CSS. */
export function statusCategory(status: string): string {
  const s = status.toUpperCase();
  if (s.includes("ABORT")) return "aborted";
  if (s.includes("EXCEPTION") || s.includes("FAIL") || s.includes("ERROR")) return "failed";
  if (isTerminal(s)) return "completed";
  if (s.startsWith("RUNNING") || s.startsWith("DISPATCHED")) return "running";
  if (s.startsWith("SUBMITTED")) return "submitted";
  return "other";
}

export function siteStateLabel(state: SiteState | undefined, nowSec: number): string {
  if (!state) return VIEW_STATES.SILENT;
  switch (state.state) {
    case VIEW_STATES.QUIET:
      return state.since != null ? `quiet for ${formatDuration(nowSec - state.since)}` : "quiet";
    case VIEW_STATES.SILENT:
      return "silent (nothing yet)";
    case VIEW_STATES.UNAVAILABLE:
      return state.reason ? `unavailable: ${state.reason}` : "unavailable";
    default:
      return state.reason ? `${state.state}: ${state.reason}` : state.state;
  }
}

/** Case-insensitive match ranges of `query` in `text`. */
export function findMatches(text: string, query: string): Array<[number, number]> {
  if (!query) return [];
  const hay = text.toLowerCase();
  const needle = query.toLowerCase();
  const out: Array<[number, number]> = [];
  for (let i = hay.indexOf(needle); i >= 0; i = hay.indexOf(needle, i + needle.length)) {
    out.push([i, i + needle.length]);
  }
  return out;
}

/** Append `text` to `parent` with the matched ranges (offsets from `offset`) in <mark>. */
function appendHighlighted(
  parent: Node,
  text: string,
  offset: number,
  matches: Array<[number, number]>,
): void {
  const doc = parent.ownerDocument ?? document;
  let pos = 0;
  for (const [start, end] of matches) {
    const a = Math.max(start - offset, pos);
    const b = Math.min(end - offset, text.length);
    if (b <= a) continue;
    if (a > pos) parent.appendChild(doc.createTextNode(text.slice(pos, a)));
    const mark = doc.createElement("mark");
    mark.className = "flarenb-match";
    mark.textContent = text.slice(a, b);
    parent.appendChild(mark);
    pos = b;
  }
  if (pos < text.length) parent.appendChild(doc.createTextNode(text.slice(pos)));
}

const numberFmt = new Intl.NumberFormat("en-US");
export const fmtCount = (n: number): string => numberFmt.format(n);

/**
 * The DOM row of one entry. Log text only ever reaches the DOM through text nodes.
 */
export function buildRow(entry: Entry, showSite: boolean, query: string): HTMLElement {
  const row = document.createElement("div");
  row.dataset.site = entry.site;
  if (showSite) {
    const site = document.createElement("span");
    site.className = "flarenb-line-site";
    site.textContent = entry.site;
    row.appendChild(site);
  }
  const body = document.createElement("span");
  body.className = "flarenb-line-text";
  row.appendChild(body);
  if (entry.kind === "gap") {
    row.className = "flarenb-gap";
    row.setAttribute("data-testid", "flarenb-gap");
    row.dataset.reason = entry.reason;
    row.dataset.first = String(entry.first);
    row.dataset.last = String(entry.last);
    body.textContent =
      entry.reason === "skipped"
        ? `⋯ ${fmtCount(entry.count)} lines skipped to stay within the notebook's message budget (still downloadable)`
        : `⋯ ${fmtCount(entry.count)} lines not received by this view (download for the complete log)`;
    return row;
  }
  row.className = "flarenb-line";
  row.setAttribute("data-testid", "flarenb-line");
  row.dataset.seq = String(entry.seq);
  if (entry.level) {
    row.dataset.level = entry.level;
    row.classList.add(`flarenb-level-${entry.level.toLowerCase()}`);
  }
  if (entry.isError) row.classList.add("flarenb-error-line");
  if (entry.ts) row.title = entry.ts;
  const matches = findMatches(entry.plain, query);
  let offset = 0;
  for (const seg of parseAnsi(entry.text)) {
    let target: Node = body;
    if (seg.style) {
      const span = document.createElement("span");
      span.className = styleClasses(seg.style).join(" ");
      body.appendChild(span);
      target = span;
    }
    appendHighlighted(target, seg.text, offset, matches);
    offset += seg.text.length;
  }
  return row;
}
