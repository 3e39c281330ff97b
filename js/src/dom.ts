/** DOM helpers shared by the view's pieces. Text only ever reaches the DOM through textContent. */
import type { AnyModel } from "@anywidget/types";
import type { WidgetModel } from "./types";

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  cls: string,
  testid?: string,
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (testid) node.setAttribute("data-testid", testid);
  return node;
}

/** A `<button type="button">` with its label and tooltip. */
export function button(cls: string, testid: string, text = "", title = ""): HTMLButtonElement {
  const node = el("button", cls, testid);
  node.type = "button";
  if (text) node.textContent = text;
  if (title) node.title = title;
  return node;
}

/** Set text only when it changed: an identical write still invalidates layout. */
export function setText(node: HTMLElement, text: string): void {
  if (node.textContent !== text) node.textContent = text;
}

/** Call `fn` on each of the model's `events`; returns what stops listening. */
export function listen(model: AnyModel<WidgetModel>, events: string[], fn: () => void): () => void {
  for (const event of events) model.on(event, fn);
  return () => {
    for (const event of events) model.off(event, fn);
  };
}
