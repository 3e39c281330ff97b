import { describe, expect, it } from "vitest";
import { parseAnsi, stripAnsi, styleClasses } from "../src/ansi";

describe("parseAnsi", () => {
  it("leaves text without escapes alone", () => {
    expect(parseAnsi("plain <b>")).toEqual([{ text: "plain <b>", style: null }]);
  });

  it("maps SGR 30-37, 90-97, bold and reset to styles", () => {
    const segs = parseAnsi("\x1b[31mred\x1b[0m plain \x1b[1;94mbold blue\x1b[0m");
    expect(segs.map((s) => s.text)).toEqual(["red", " plain ", "bold blue"]);
    expect(styleClasses(segs[0].style!)).toEqual(["flarenb-ansi-fg-red"]);
    expect(segs[1].style).toBeNull();
    expect(styleClasses(segs[2].style!)).toEqual(["flarenb-ansi-fg-bright-blue", "flarenb-ansi-bold"]);
  });

  it("handles 256-colour, true colour, background and non-SGR sequences", () => {
    const segs = parseAnsi("\x1b[38;5;9ma\x1b[38;2;1;2;3mb\x1b[42mc\x1b[2K\x1b]0;title\x07d\x1b[39;49me");
    expect(segs.map((s) => s.text).join("")).toBe("abcde");
    expect(styleClasses(segs[0].style!)).toEqual(["flarenb-ansi-fg-bright-red"]);
    expect(styleClasses(segs[2].style!)).toEqual(["flarenb-ansi-fg-bright-red", "flarenb-ansi-bg-green"]);
    expect(segs[segs.length - 1].style).toBeNull();
  });

  it("strips escapes, including a dangling ESC", () => {
    expect(stripAnsi("\x1b[1;31mERROR\x1b[0m done\x1b")).toBe("ERROR done");
    expect(stripAnsi("no escapes")).toBe("no escapes");
  });
});
