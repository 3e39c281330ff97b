/** "First error": jump to the first ERROR or traceback of the active lane. */
import { button } from "../dom";
import type { ControlFactory } from "./control";

export const jumpError: ControlFactory = ({ lanes }) => {
  const btn = button(
    "flarenb-button",
    "flarenb-jump-error",
    "First error",
    "Jump to the first ERROR or traceback of this lane",
  );
  btn.addEventListener("click", () => lanes.jumpToFirstError(lanes.active));
  return { nodes: [btn] };
};
