/** The follow/pause button: "Following", or "Paused: follow (N new)" (aria-pressed while following). */
import { button, setText } from "../dom";
import { fmtCount } from "../format";
import type { ControlFactory } from "./control";

export const follow: ControlFactory = ({ lanes, root }) => {
  const btn = button("flarenb-button flarenb-follow", "flarenb-follow");
  btn.addEventListener("click", () => lanes.setFollow(true));
  return {
    nodes: [btn],
    update() {
      const on = lanes.following();
      if (btn.getAttribute("aria-pressed") !== String(on)) btn.setAttribute("aria-pressed", String(on));
      const unseen = lanes.unseen;
      setText(btn, on ? "Following" : unseen ? `Paused: follow (${fmtCount(unseen)} new)` : "Paused: follow");
      root.classList.toggle("flarenb-paused", !on);
    },
  };
};
