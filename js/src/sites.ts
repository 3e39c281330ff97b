/** The lanes a view offers: "All sites" (every site, interleaved by time), then one per site. */
import type { AnyModel } from "@anywidget/types";
import type { LogStore } from "./store";
import type { WidgetModel } from "./types";

/** The interleaved "All sites" lane. */
export const ALL = "\u0000all";

/** A lane's name in test ids ("all-sites" or the site). */
export const laneId = (lane: string): string => (lane === ALL ? "all-sites" : lane);

/** The model's sites, then any site the store has lines of. */
export function siteList(model: AnyModel<WidgetModel>, store: LogStore): string[] {
  const sites = [...(model.get("sites") ?? [])];
  for (const s of store.sites()) if (!sites.includes(s)) sites.push(s);
  return sites;
}
