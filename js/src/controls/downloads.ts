/**
 * Downloads. "Download" asks the kernel to write the complete per-site logs beside the notebook (the only
 * control that talks to the kernel) and shows the paths below the lane; "Save from browser" saves the lines
 * this view holds as a file without the kernel (works while it is busy).
 */
import type { AnyModel } from "@anywidget/types";
import { button, el, listen } from "../dom";
import { ALL } from "../sites";
import type { LogStore } from "../store";
import type { WidgetModel } from "../types";
import type { ControlFactory } from "./control";

export const download: ControlFactory = ({ model, store }) => {
  const btn = button(
    "flarenb-button",
    "flarenb-download",
    "Download",
    "Ask the kernel to save the complete per-site logs beside the notebook",
  );
  const result = el("div", "flarenb-download-result", "flarenb-download-result");
  result.hidden = true;
  let pending: string | null = null;

  const show = (paths: string[], error: string | null) => {
    result.hidden = false;
    result.replaceChildren();
    result.dataset.state = error ? "error" : "done";
    const head = el("div", "");
    head.textContent = error ? `Download failed: ${error}` : "Logs saved beside the notebook:";
    result.appendChild(head);
    if (!error) {
      const list = el("ul", "");
      for (const p of paths) {
        const li = el("li", "flarenb-download-path");
        const code = el("code", "");
        code.textContent = p;
        li.appendChild(code);
        list.appendChild(li);
      }
      result.appendChild(list);
    }
  };
  /** the last result, kept by the kernel in the `downloads` trait */
  const restore = () => {
    const d = model.get("downloads") ?? {};
    if (d.paths?.length || d.error) show(d.paths ?? [], d.error ?? null);
  };

  btn.addEventListener("click", () => {
    const id = `dl-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    pending = id;
    model.send({ kind: "download", request_id: id });
    result.hidden = false;
    result.dataset.state = "pending";
    result.textContent =
      "Asking the kernel to write the logs beside the notebook… (this waits while the kernel is " +
      "busy; “Save from browser” saves the lines shown here right away)";
  });
  const disposers = [
    listen(model, ["change:downloads"], restore),
    store.onDownload((r) => {
      if (r.request_id !== null && r.request_id !== pending) return;
      pending = null;
      show(r.paths, r.error);
    }),
  ];
  restore();
  return { nodes: [btn], panel: result, dispose: () => disposers.forEach((d) => d()) };
};

/** The lines of `lane` the store holds, as a text file (what "Save from browser" saves). */
export function browserLogText(
  model: AnyModel<WidgetModel>,
  store: LogStore,
  lane: string,
): { name: string; text: string } {
  const job = model.get("job_id") || "job";
  const all = lane === ALL;
  const sites = all ? store.sites() : [lane];
  const evicted = sites.reduce((n, s) => n + (store.evicted.get(s) ?? 0), 0);
  const out: string[] = [];
  if (evicted) out.push(`# ${evicted} older lines left the browser; use Download for the complete log`);
  for (const e of all ? store.all() : store.site(lane)) {
    const prefix = all ? `[${e.site}] ` : "";
    out.push(
      e.kind === "line"
        ? prefix + e.plain
        : `${prefix}# ${e.count} lines ${e.reason === "skipped" ? "skipped" : "not received"} here`,
    );
  }
  const safe = (s: string) => s.replace(/[^A-Za-z0-9._-]/g, "_");
  return { name: `${safe(job)}_${all ? "all-sites" : safe(lane)}.log`, text: out.join("\n") + "\n" };
}

export const saveFromBrowser: ControlFactory = ({ model, store, root, lanes }) => {
  const btn = button(
    "flarenb-button",
    "flarenb-download-browser",
    "Save from browser",
    "Save the lines this view holds now (works while the kernel is busy)",
  );
  btn.addEventListener("click", () => {
    const { name, text } = browserLogText(model, store, lanes.active);
    const url = URL.createObjectURL(new Blob([text], { type: "text/plain;charset=utf-8" }));
    const a = document.createElement("a");
    a.href = url;
    a.download = name;
    a.style.display = "none";
    root.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  });
  return { nodes: [btn] };
};
