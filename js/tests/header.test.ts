import { afterEach, describe, expect, it, vi } from "vitest";
import { Header } from "../src/header";
import { LogStore } from "../src/store";
import { FakeModel } from "./fake-model";

const byId = (root: HTMLElement, id: string) =>
  [...root.querySelectorAll<HTMLElement>("[data-testid]")].find((n) => n.getAttribute("data-testid") === id) ?? null;

function make(overrides: ConstructorParameters<typeof FakeModel>[0] = {}, now = 1000) {
  const model = new FakeModel(overrides);
  const store = new LogStore();
  const root = document.createElement("div");
  const jumps: string[] = [];
  const header = new Header(model.asModel(), store, root, (site) => jumps.push(site), () => now);
  root.appendChild(header.element);
  return { model, store, root, header, jumps };
}

afterEach(() => vi.useRealTimers());

describe("Header", () => {
  it.each([
    ["SUBMITTED", "submitted", false],
    ["RUNNING", "running", false],
    ["DISPATCHED", "running", false],
    ["FINISHED:COMPLETED", "completed", true],
    ["FINISHED:EXECUTION_EXCEPTION", "failed", true],
    ["FAILED", "failed", true],
    ["FINISHED:ABORTED", "aborted", true],
    ["ABANDONED", "completed", true],
    ["", "other", false],
  ])("status %j: data-status %s on the status and the root, finished=%s", (status, category, finished) => {
    const { root } = make({ status });
    expect(byId(root, "flarenb-status")!.textContent).toBe(status);
    expect(byId(root, "flarenb-status")!.dataset.status).toBe(category);
    expect(root.dataset.status).toBe(category);
    expect(root.classList.contains("flarenb-finished")).toBe(finished);
  });

  it("a view that is no longer live counts as finished; the header follows model changes", () => {
    const { model, root } = make();
    expect(root.classList.contains("flarenb-finished")).toBe(false);
    model.set("live", false);
    expect(root.classList.contains("flarenb-finished")).toBe(true);
    model.set("job_name", "");
    expect(byId(root, "flarenb-job-name")!.hidden).toBe(true);
    model.set("job_id", "job-9");
    expect(byId(root, "flarenb-job-id")!.textContent).toBe("job-9");
  });

  it("shows the follower's problem as text, hidden when there is none", () => {
    const { model, root } = make();
    const problem = root.querySelector<HTMLElement>(".flarenb-problem")!;
    expect(problem.hidden).toBe(true);
    model.set("problem", "server unreachable: <b>refused</b>");
    expect(problem.hidden).toBe(false);
    expect(problem.textContent).toBe("server unreachable: <b>refused</b>");
    expect(problem.querySelector("b")).toBeNull();
    model.set("problem", null);
    expect(problem.hidden).toBe(true);
  });

  it("shows how the logs are followed as debug info: an ⓘ whose tooltip and opened text are the line, as text", () => {
    const { model, root } = make();
    const info = byId(root, "flarenb-source-info")!;
    const text = byId(root, "flarenb-source-info-text")!;
    expect(info.tagName).toBe("DETAILS");
    expect(info.hidden).toBe(true); // the kernel has not said yet
    expect(info.querySelector("summary")!.textContent).toBe("ⓘ");
    model.set("source_info", "3 local log files, inotify notifications (safety poll every 5 s)");
    expect(info.hidden).toBe(false);
    expect(text.textContent).toBe("3 local log files, inotify notifications (safety poll every 5 s)");
    expect(info.title).toBe("followed by: 3 local log files, inotify notifications (safety poll every 5 s)");
    model.set("source_info", 'admin API: <img src=x onerror="alert(1)"> & <b>x</b>');
    expect(text.textContent).toBe('admin API: <img src=x onerror="alert(1)"> & <b>x</b>');
    expect(info.querySelector("img, b")).toBeNull();
    expect(info.title).toBe('followed by: admin API: <img src=x onerror="alert(1)"> & <b>x</b>');
    model.set("source_info", "");
    expect(info.hidden).toBe(true);
    expect(info.title).toBe("");
  });

  it("lists a state per site: model sites first, then sites only the store knows", () => {
    const { model, store, root } = make(
      {
        site_states: {
          server: { state: "streaming", reason: null, since: null },
          "site-1": { state: "quiet", reason: null, since: 990 },
          "site-2": { state: "done", reason: "job finished", since: null },
        },
      },
      1000,
    );
    const items = () => [...root.querySelectorAll<HTMLElement>(".flarenb-site-state")];
    expect(items().map((i) => [i.getAttribute("data-testid"), i.dataset.state, i.textContent])).toEqual([
      ["flarenb-site-state-server", "streaming", "serverstreaming"],
      ["flarenb-site-state-site-1", "quiet", "site-1quiet for 10s"],
      ["flarenb-site-state-site-2", "done", "site-2done: job finished"],
    ]);
    store.ingest({ "site-7": [[1, "hello", "INFO", null]] });
    model.set("site_states", { ...model.get("site_states"), "site-2": { state: "unavailable", reason: null, since: null } });
    expect(items().map((i) => [i.dataset.state, i.textContent])).toEqual([
      ["streaming", "serverstreaming"],
      ["quiet", "site-1quiet for 10s"],
      ["unavailable", "site-2unavailable"],
      ["silent", "site-7silent"],
    ]);
  });

  it("a site that logged an error gets a first-error button once the entries reach it", () => {
    const { store, root, header, jumps } = make();
    expect(root.querySelector(".flarenb-first-error")).toBeNull();
    store.ingest({ "site-2": [[1, "ok", "INFO", null], [2, "boom", "ERROR", null]] });
    header.entries(store.site("site-2"), []);
    const btn = byId(root, "flarenb-first-error-site-2")!;
    expect(btn.textContent).toBe("⚠ first error");
    btn.dispatchEvent(new MouseEvent("click", { bubbles: true }));
    expect(jumps).toEqual(["site-2"]);
    expect(root.querySelectorAll(".flarenb-first-error")).toHaveLength(1);
  });

  it("ticks the elapsed time and quiet labels every second, and stops when disposed", () => {
    vi.useFakeTimers();
    vi.setSystemTime(1010 * 1000);
    const model = new FakeModel({ site_states: { server: { state: "quiet", reason: null, since: 1000 } } });
    const root = document.createElement("div");
    const header = new Header(model.asModel(), new LogStore(), root, () => {});
    root.appendChild(header.element);
    expect(byId(root, "flarenb-elapsed")!.textContent).toBe("10s");
    vi.advanceTimersByTime(2000);
    expect(byId(root, "flarenb-elapsed")!.textContent).toBe("12s");
    expect(byId(root, "flarenb-site-state-server")!.textContent).toBe("serverquiet for 12s");
    header.dispose();
    expect(model.listenerCount()).toBe(0);
    vi.advanceTimersByTime(5000);
    expect(byId(root, "flarenb-elapsed")!.textContent).toBe("12s");
  });
});
