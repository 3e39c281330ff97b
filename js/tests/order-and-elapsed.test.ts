import { describe, expect, it } from "vitest";
import { elapsedText, parseDuration, parseTs } from "../src/format";
import { LogStore } from "../src/store";
import type { Entry, WireItem } from "../src/types";

const at = (s: number) => `2026-12-04 10:00:${String(s).padStart(2, "0")},000`;
const line = (seq: number, text: string, ts: string | null): WireItem => [seq, text, "INFO", ts];
const order = (entries: Entry[]) => entries.map((e) => (e.kind === "line" ? e.text : `gap:${e.site}`));

describe("All sites: interleaved by timestamp", () => {
  it("a finished job's logs, received one site after the other, are shown in time order", () => {
    const store = new LogStore();
    // what a view of a finished job receives: each site's whole log in one piece, site by site
    store.ingest({ "site-1": [line(1, "s1 a", at(1)), line(2, "s1 b", at(4)), line(3, "s1 c", at(7))] });
    store.ingest({ server: [line(1, "srv a", at(0)), line(2, "srv b", at(3)), line(3, "srv c", at(8))] });
    store.ingest({ "site-2": [line(1, "s2 a", at(2)), line(2, "s2 b", at(5))] });
    expect(order(store.all())).toEqual(["srv a", "s1 a", "s2 a", "srv b", "s1 b", "s2 b", "s1 c", "srv c"]);
  });

  it("keeps arrival order for equal times and milliseconds count", () => {
    const store = new LogStore();
    store.ingest({ "site-2": [line(1, "s2 same", at(1)), line(2, "s2 later", "2026-12-04 10:00:01,500")] });
    store.ingest({ "site-1": [line(1, "s1 same", at(1)), line(2, "s1 ms", "2026-12-04T10:00:01.250")] });
    expect(order(store.all())).toEqual(["s2 same", "s1 same", "s1 ms", "s2 later"]);
  });

  it("lines without a timestamp stay right after their predecessor (a traceback stays whole)", () => {
    const store = new LogStore();
    store.ingest({
      "site-2": [
        line(1, "s2 error", at(2)),
        line(2, "Traceback (most recent call last):", null),
        line(3, "RuntimeError: boom", null),
        line(4, "s2 after", at(6)),
      ],
    });
    store.ingest({ server: [line(1, "srv 1", at(1)), line(2, "srv 3", at(3)), line(3, "srv 5", at(5))] });
    expect(order(store.all())).toEqual([
      "srv 1",
      "s2 error",
      "Traceback (most recent call last):",
      "RuntimeError: boom",
      "srv 3",
      "srv 5",
      "s2 after",
    ]);
  });

  it("never reorders a site's own lines (a clock step back), and lines before any timestamp come first", () => {
    const store = new LogStore();
    store.ingest({ server: [line(1, "srv banner", null), line(2, "srv 4", at(4)), line(3, "srv back to 2", at(2))] });
    store.ingest({ "site-1": [line(1, "s1 3", at(3)), line(2, "s1 5", at(5))] });
    expect(order(store.all())).toEqual(["srv banner", "s1 3", "srv 4", "srv back to 2", "s1 5"]);
    expect(order(store.site("server"))).toEqual(["srv banner", "srv 4", "srv back to 2"]);
  });

  it("skip markers keep their place in their site", () => {
    const store = new LogStore();
    store.ingest({ "site-1": [line(1, "s1 1", at(1)), { skipped: 3, first: 2, last: 4 }, line(5, "s1 6", at(6))] });
    store.ingest({ server: [line(1, "srv 2", at(2))] });
    expect(order(store.all())).toEqual(["s1 1", "gap:site-1", "srv 2", "s1 6"]);
  });
});

describe("elapsed time", () => {
  it("reads NVFlare's duration text", () => {
    expect(parseDuration("0:00:09.334051")).toBeCloseTo(9.334051);
    expect(parseDuration("1 day, 2:03:04")).toBe(93784);
    expect(parseDuration("2 days, 0:00:01.5")).toBe(172801.5);
    expect(parseDuration("N/A")).toBeNull();
    expect(parseDuration(null)).toBeNull();
  });

  it("a finished job shows its duration whenever it is looked at; a running one ticks from its start", () => {
    // ran 11 s, viewed 2m 52s after its start: the duration, not the time since submit
    expect(elapsedText("FINISHED:COMPLETED", 1000, null, "0:00:11.250000", 1172)).toBe("11s");
    expect(elapsedText("FINISHED:COMPLETED", 1000, 1011, null, 1172)).toBe("11s");
    expect(elapsedText("FINISHED:EXECUTION_EXCEPTION", 1000, 5000, "1:02:03", 9999)).toBe("1h 02m 03s");
    expect(elapsedText("RUNNING", 1000, null, "0:00:05", 1065)).toBe("1m 05s"); // a running job's duration is stale
    expect(elapsedText("SUBMITTED", null, null, null, 1065)).toBe("");
  });

  it("parses log timestamps to comparable milliseconds", () => {
    expect(parseTs("2026-12-04 10:00:01,250")! - parseTs("2026-12-04 10:00:01")!).toBe(250);
    expect(parseTs("[2026-12-04T10:00:01.5]")! - parseTs("2026-12-04 10:00:00,000")!).toBe(1500);
    expect(parseTs("t1")).toBeNull();
    expect(parseTs(null)).toBeNull();
  });
});
