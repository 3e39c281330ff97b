/** The search box and its "N matching lines" count. */
import { el, setText } from "../dom";
import { fmtCount } from "../format";
import type { ControlFactory } from "./control";

export const search: ControlFactory = ({ lanes }) => {
  const input = el("input", "flarenb-search", "flarenb-search");
  const count = el("span", "flarenb-search-count", "flarenb-search-count");
  input.type = "search";
  input.placeholder = "Search";
  input.setAttribute("aria-label", "Search the log");
  input.addEventListener("input", () => {
    lanes.filter.set({ query: input.value });
    lanes.renderLane();
  });
  return {
    nodes: [input, count],
    update() {
      const query = lanes.filter.query;
      if (input.value !== query) input.value = query; // e.g. cleared by "first error"
      // with a search, every entry of the view is a matching line (gap markers are hidden)
      setText(count, query ? `${fmtCount(lanes.count())} matching lines` : "");
    },
  };
};
