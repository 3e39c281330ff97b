/**
 * The words the front end shares with the kernel: the same values as `flarenb/vocab.py` (its `FRONT_END`).
 * The constants between the markers are plain JSON literals (one per `export const ... as const;`):
 * `tests/test_vocab_parity.py` reads them and fails when they differ from Python's. Change both together.
 */

// vocab:begin
export const TERMINAL_PREFIXES = ["FINISHED", "FAILED", "ABORTED", "ABANDONED"] as const;
export const LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] as const;
export const LEVEL_ALIASES = { "WARN": "WARNING", "FATAL": "CRITICAL", "EXCEPTION": "ERROR" } as const;
export const LEVEL_RANK = { "DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50 } as const;
export const VIEW_STATES = {
  "SILENT": "silent",
  "STREAMING": "streaming",
  "QUIET": "quiet",
  "DONE": "done",
  "UNAVAILABLE": "unavailable"
} as const;
// vocab:end

export type Level = (typeof LEVELS)[number];
export type ViewState = (typeof VIEW_STATES)[keyof typeof VIEW_STATES];

/** True for the status of a job that has ended ("FINISHED:COMPLETED", "FAILED", ...), as `vocab.is_terminal`. */
export function isTerminal(status: string | null | undefined): boolean {
  if (status == null) return false;
  const s = status.toUpperCase();
  return TERMINAL_PREFIXES.some((p) => s.startsWith(p));
}

/** One of LEVELS for `level` (any case, aliases resolved), else null: as `vocab.norm_level`. */
export function normLevel(level: unknown): Level | null {
  if (typeof level !== "string") return null;
  const up = level.toUpperCase();
  const name: string = (LEVEL_ALIASES as Record<string, string>)[up] ?? up;
  return (LEVELS as readonly string[]).includes(name) ? (name as Level) : null;
}
