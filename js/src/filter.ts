/** The level filter and the search of a lane: which entries it shows. */
import type { Entry, Level } from "./types";
import { LEVEL_RANK } from "./vocab";

export class LaneFilter {
  minLevel: Level | null = null;
  query = "";
  private needle = "";

  /** Change the minimum level and/or the search (a field left out keeps its value). */
  set(change: { minLevel?: Level | null; query?: string }): void {
    if (change.minLevel !== undefined) this.minLevel = change.minLevel;
    if (change.query !== undefined) {
      this.query = change.query;
      this.needle = change.query.toLowerCase();
    }
  }

  clear(): void {
    this.set({ minLevel: null, query: "" });
  }

  /** True when the entry passes the level filter and the search (gap markers only without either). */
  passes(e: Entry): boolean {
    if (e.kind === "gap") return !this.query && !this.minLevel;
    if (this.minLevel) {
      const rank = e.level ? LEVEL_RANK[e.level] : e.isError ? LEVEL_RANK.ERROR : 0;
      if (rank < LEVEL_RANK[this.minLevel]) return false;
    }
    if (this.query && !e.plain.toLowerCase().includes(this.needle)) return false;
    return true;
  }
}
