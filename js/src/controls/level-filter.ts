/** The minimum-level <select> ("" = all levels). */
import { el } from "../dom";
import type { Level } from "../types";
import { LEVELS } from "../vocab";
import type { ControlFactory } from "./control";

export const levelFilter: ControlFactory = ({ lanes }) => {
  const select = el("select", "flarenb-level-filter", "flarenb-level-filter");
  select.setAttribute("aria-label", "Minimum level");
  for (const value of ["", ...LEVELS]) {
    const opt = document.createElement("option");
    opt.value = value;
    opt.textContent = value ? `≥ ${value}` : "All levels";
    select.appendChild(opt);
  }
  select.addEventListener("change", () => {
    lanes.filter.set({ minLevel: (select.value || null) as Level | null });
    lanes.renderLane();
  });
  return {
    nodes: [select],
    update() {
      const value = lanes.filter.minLevel ?? ""; // e.g. cleared by "first error"
      if (select.value !== value) select.value = value;
    },
  };
};
