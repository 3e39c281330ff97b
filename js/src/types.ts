/** Types shared by the model store and the views. Mirrors `flarenb/widget.py`. */

import type { Level, ViewState } from "./vocab";

export type { Level } from "./vocab";
export { LEVELS } from "./vocab";

/** A line on the wire: [seq, text, level, ts]. */
export type WireLine = [number, string, Level | null, string | null];
/** Lines the kernel could not send within its message budget (still in the download). */
export interface WireSkip {
  skipped: number;
  first: number;
  last: number;
}
export type WireItem = WireLine | WireSkip;

export interface SiteState {
  state: ViewState | string;
  reason: string | null;
  /** epoch seconds the current state (e.g. quiet) started, if known */
  since: number | null;
}

export interface DownloadState {
  paths?: string[];
  error?: string | null;
}

/** The synced traits of `flarenb.widget.LogView`. */
export interface WidgetModel {
  job_id: string;
  job_name: string;
  sites: string[];
  status: string;
  submit_time: string | null;
  start_ts: number | null;
  end_ts: number | null;
  duration: string | null;
  site_states: Record<string, SiteState>;
  snapshot: Record<string, WireLine[]>;
  line_counts: Record<string, number>;
  skipped: Record<string, number>;
  live: boolean;
  downloads: DownloadState;
  browser_max_lines: number;
  /** why following is stuck now ("server unreachable: ..."), null when it works */
  problem?: string | null;
  /** how the kernel follows the logs, one line of debug info ("3 local log files, inotify notifications ..."); "" unknown */
  source_info?: string;
  /** the job's round progress; `{}` while unknown */
  progress?: Progress;
  /** per-round metrics by site (`{}` or no series while there are none); resent whole as it grows */
  metrics?: Metrics;
}

/** A site's part in the current round. */
export type RoundSiteState = "reported" | "training" | "silent";

/** The `progress` trait once a round has results. */
export interface RoundProgress {
  /** 0-based: the latest round that has results */
  round: number;
  /** number of rounds from the job config, if known */
  total: number | null;
  sites: Record<string, RoundSiteState>;
  /** seconds one round takes (recent rounds), if known */
  round_seconds: number | null;
  /** seconds until the last round ends, if known */
  eta_seconds: number | null;
}

/** The `progress` trait: `{}` while unknown. */
export type Progress = RoundProgress | Record<string, never>;

/** One metric of one site ("aggregated": the server's aggregate) over rounds. */
export interface MetricSeries {
  metric: string;
  /** a site name or AGGREGATED */
  site: string;
  /** [round, value], rounds 0-based */
  points: Array<[number, number]>;
}

/** The `metrics` trait (may be `{}`). */
export interface Metrics {
  series?: MetricSeries[];
}

/** A line found by the kernel (`flarenb/viewsearch.py`): [site, seq, text, level, ts]. */
export type FoundLine = [string, number, string, Level | null, string | null];

/** The kernel's answer to a `search`: matching lines this view does not hold (capped), and how many there are. */
export interface SearchResult {
  kind: "search_result";
  request_id: string;
  first_error: boolean;
  lines: FoundLine[];
  /** every match the kernel holds outside the lines sent as `held` */
  matches: number;
  truncated: boolean;
  /** lines of the searched sites that left the kernel's history too (only the download has them) */
  dropped: number;
  error: string | null;
}

/** kernel -> browser custom messages */
export type KernelMsg =
  | { kind: "lines"; sites: Record<string, WireItem[]> }
  | { kind: "download_result"; request_id: string | null; paths: string[]; error: string | null }
  | SearchResult;

/** Ask the kernel to search its history (text and/or level, or each site's first error), leaving out `held`. */
export interface SearchRequest {
  kind: "search";
  request_id: string;
  query: string;
  min_level: Level | null;
  first_error: boolean;
  sites: string[];
  /** per site, the runs [first, last] of seqs this view holds */
  held: Record<string, Array<[number, number]>>;
}

/** browser -> kernel custom messages */
export type BrowserMsg = { kind: "download"; request_id: string } | SearchRequest;

export interface LineEntry {
  kind: "line";
  /** global arrival order across sites (breaks ties of `key`) */
  gid: number;
  /** interleaved view order: the line's timestamp (ms), never below its predecessor's in the same site */
  key: number;
  site: string;
  seq: number;
  text: string;
  /** text without ANSI escape codes (search, downloads) */
  plain: string;
  level: Level | null;
  ts: string | null;
  /** an ERROR/CRITICAL line or the start of a Python traceback */
  isError: boolean;
}

/** Lines that are not in this view: skipped by the kernel's budget or never received here. */
export interface GapEntry {
  kind: "gap";
  gid: number;
  key: number;
  site: string;
  count: number;
  /** "skipped": the kernel's message budget; "missed": not received by this browser */
  reason: "skipped" | "missed";
  /** the seqs of the lines it stands for: first..last */
  first: number;
  last: number;
}

export type Entry = LineEntry | GapEntry;
