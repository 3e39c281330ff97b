import { describe, expect, it } from "vitest";
import { browserLogText } from "../src/controls/downloads";
import { LaneFilter } from "../src/filter";
import { ALL } from "../src/sites";
import { LogStore } from "../src/store";
import { FakeModel } from "./fake-model";

describe("LaneFilter", () => {
  const store = new LogStore();
  store.ingest({
    server: [
      [1, "dbg", "DEBUG", null],
      [2, "Round 1", "INFO", null],
      { skipped: 3, first: 3, last: 5 },
      [6, "Traceback (most recent call last):", null, null],
      [7, "no level", null, null],
    ],
  });
  const kinds = (f: LaneFilter) =>
    store.site("server").filter((e) => f.passes(e)).map((e) => (e.kind === "line" ? e.plain : "gap"));

  it("passes everything, gap markers included, without a filter", () => {
    expect(kinds(new LaneFilter())).toEqual(["dbg", "Round 1", "gap", "Traceback (most recent call last):", "no level"]);
  });

  it("ranks a line without a level as ERROR when it is an error, else below DEBUG; hides gaps", () => {
    const f = new LaneFilter();
    f.set({ minLevel: "WARNING" });
    expect(kinds(f)).toEqual(["Traceback (most recent call last):"]);
    f.set({ minLevel: "DEBUG" });
    expect(kinds(f)).toEqual(["dbg", "Round 1", "Traceback (most recent call last):"]);
  });

  it("searches case-insensitively; set keeps what it is not given; clear resets both", () => {
    const f = new LaneFilter();
    f.set({ query: "rOUND" });
    expect(kinds(f)).toEqual(["Round 1"]);
    f.set({ minLevel: "ERROR" });
    expect(f.query).toBe("rOUND");
    expect(kinds(f)).toEqual([]);
    f.clear();
    expect([f.minLevel, f.query]).toEqual([null, ""]);
    expect(kinds(f)).toHaveLength(5);
  });
});

describe("browserLogText", () => {
  it("saves a lane's held lines as plain text, with markers for what the browser does not hold", () => {
    const model = new FakeModel({ job_id: "job/1 x" });
    const store = new LogStore(3);
    store.ingest({
      "site 1": [[1, "a", "INFO", null], [2, "\x1b[31mb\x1b[0m", "INFO", null], { skipped: 2, first: 3, last: 4 }, [5, "c", null, null]],
      server: [[1, "s", "INFO", null]],
    });
    expect(browserLogText(model.asModel(), store, "site 1")).toEqual({
      name: "job_1_x_site_1.log",
      text: "# 1 older lines left the browser; use Download for the complete log\nb\n# 2 lines skipped here\nc\n",
    });
    const all = browserLogText(model.asModel(), store, ALL);
    expect(all.name).toBe("job_1_x_all-sites.log");
    expect(all.text.split("\n")).toContain("[server] s");
  });
});
