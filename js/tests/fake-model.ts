/** A minimal stand-in for an anywidget model: get/set/on/off/send/save_changes. */
import type { AnyModel } from "@anywidget/types";
import type { WidgetModel } from "../src/types";

type Handler = (...args: unknown[]) => void;

export function defaultState(): WidgetModel {
  return {
    job_id: "job-123",
    job_name: "hello-numpy",
    sites: ["server", "site-1", "site-2"],
    status: "RUNNING",
    submit_time: "2024-05-01 12:00:00",
    start_ts: 1000,
    end_ts: null,
    duration: null,
    site_states: {},
    snapshot: {},
    line_counts: {},
    skipped: {},
    live: true,
    downloads: {},
    browser_max_lines: 5000,
  };
}

export class FakeModel {
  state: WidgetModel;
  readonly handlers = new Map<string, Set<Handler>>();
  readonly sent: unknown[] = [];
  widget_manager = { get_model: () => Promise.reject(new Error("no manager")) };

  constructor(overrides: Partial<WidgetModel> = {}) {
    this.state = { ...defaultState(), ...overrides };
  }
  get<K extends keyof WidgetModel>(key: K): WidgetModel[K] {
    return this.state[key];
  }
  set<K extends keyof WidgetModel>(key: K, value: WidgetModel[K]): void {
    this.state[key] = value;
    this.emit(`change:${String(key)}`);
  }
  on(event: string, fn: Handler): void {
    if (!this.handlers.has(event)) this.handlers.set(event, new Set());
    this.handlers.get(event)!.add(fn);
  }
  off(event?: string | null, fn?: Handler | null): void {
    if (!event) return this.handlers.clear();
    if (!fn) return void this.handlers.delete(event);
    this.handlers.get(event)?.delete(fn);
  }
  send(content: unknown): void {
    this.sent.push(content);
  }
  save_changes(): void {}
  emit(event: string, ...args: unknown[]): void {
    for (const fn of [...(this.handlers.get(event) ?? [])]) fn(...args);
  }
  /** a kernel -> browser custom message */
  custom(msg: unknown): void {
    this.emit("msg:custom", msg, []);
  }
  listenerCount(): number {
    let n = 0;
    for (const set of this.handlers.values()) n += set.size;
    return n;
  }
  asModel(): AnyModel<WidgetModel> {
    return this as unknown as AnyModel<WidgetModel>;
  }
}
