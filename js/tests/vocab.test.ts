import { describe, expect, it } from "vitest";
import { statusCategory } from "../src/format";
import { isTerminal, normLevel } from "../src/vocab";

describe("vocab", () => {
  it("knows when a job has ended, as flarenb.vocab.is_terminal", () => {
    for (const s of ["FINISHED:COMPLETED", "finished:aborted", "FAILED", "ABORTED", "ABANDONED"]) {
      expect(isTerminal(s)).toBe(true);
    }
    for (const s of ["SUBMITTED", "RUNNING", "DISPATCHED", "", null, undefined]) expect(isTerminal(s)).toBe(false);
    expect(statusCategory("FINISHED:COMPLETED")).toBe("completed");
    expect(statusCategory("FINISHED:EXECUTION_EXCEPTION")).toBe("failed");
  });

  it("normalizes levels with their aliases, as flarenb.vocab.norm_level", () => {
    expect(normLevel("warn")).toBe("WARNING");
    expect(normLevel("FATAL")).toBe("CRITICAL");
    expect(normLevel("info")).toBe("INFO");
    expect(normLevel("trace")).toBeNull();
    expect(normLevel(null)).toBeNull();
  });
});
