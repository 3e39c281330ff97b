/** "First error": jump to the first ERROR or traceback of the active lane. */
import { button } from "../dom";
import { jumpToFirstError } from "../first-error";
import type { ControlFactory } from "./control";

export const jumpError: ControlFactory = ({ lanes, store, kernel }) => {
  const btn = button(
    "flarenb-button",
    "flarenb-jump-error",
    "First error",
    "Jump to the first ERROR or traceback of this lane",
  );
  btn.addEventListener("click", () => jumpToFirstError(lanes, store, lanes.active, kernel));
  return { nodes: [btn] };
};
