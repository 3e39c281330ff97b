/**
 * ANSI SGR colour codes -> styled segments. Never produces markup: callers build DOM nodes from
 * the segments with `textContent`. Other escape sequences (cursor moves, OSC titles) are removed.
 */

export interface Style {
  fg: string | null; // class suffix: "red", "bright-red", or null
  bg: string | null;
  bold: boolean;
  dim: boolean;
  italic: boolean;
  underline: boolean;
}

export interface Segment {
  text: string;
  style: Style | null; // null: no styling
}

const NAMES = ["black", "red", "green", "yellow", "blue", "magenta", "cyan", "white"];
// CSI ... final byte, OSC ... BEL/ST, or a two-character escape
// eslint-disable-next-line no-control-regex
const ESCAPE = /\x1b(?:\[([0-9;?:]*)([ -/]*[@-~])|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])?/g;

const plainStyle = (): Style => ({
  fg: null,
  bg: null,
  bold: false,
  dim: false,
  italic: false,
  underline: false,
});

const isPlain = (s: Style): boolean =>
  !s.fg && !s.bg && !s.bold && !s.dim && !s.italic && !s.underline;

function applySgr(style: Style, params: string): void {
  const codes = params === "" ? [0] : params.split(/[;:]/).map((p) => (p === "" ? 0 : Number(p)));
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i];
    if (c === 0) Object.assign(style, plainStyle());
    else if (c === 1) style.bold = true;
    else if (c === 2) style.dim = true;
    else if (c === 3) style.italic = true;
    else if (c === 4) style.underline = true;
    else if (c === 22) style.bold = style.dim = false;
    else if (c === 23) style.italic = false;
    else if (c === 24) style.underline = false;
    else if (c >= 30 && c <= 37) style.fg = NAMES[c - 30];
    else if (c === 39) style.fg = null;
    else if (c >= 40 && c <= 47) style.bg = NAMES[c - 40];
    else if (c === 49) style.bg = null;
    else if (c >= 90 && c <= 97) style.fg = `bright-${NAMES[c - 90]}`;
    else if (c >= 100 && c <= 107) style.bg = `bright-${NAMES[c - 100]}`;
    else if (c === 38 || c === 48) {
      // 256-colour / true colour: map the common 0-15 palette, skip the rest
      const mode = codes[i + 1];
      if (mode === 5) {
        const n = codes[i + 2];
        const name = n < 8 ? NAMES[n] : n < 16 ? `bright-${NAMES[n - 8]}` : null;
        if (c === 38) style.fg = name;
        else style.bg = name;
        i += 2;
      } else if (mode === 2) {
        i += 4;
      }
    }
  }
}

/** Split `text` into styled segments; escape sequences never appear in the output text. */
export function parseAnsi(text: string): Segment[] {
  if (!text.includes("\x1b")) return [{ text, style: null }];
  const out: Segment[] = [];
  const style = plainStyle();
  let last = 0;
  ESCAPE.lastIndex = 0;
  for (let m = ESCAPE.exec(text); m !== null; m = ESCAPE.exec(text)) {
    if (m.index > last) push(out, text.slice(last, m.index), style);
    last = ESCAPE.lastIndex;
    if (m[2] === "m") applySgr(style, m[1] ?? "");
  }
  if (last < text.length) push(out, text.slice(last), style);
  return out;
}

function push(out: Segment[], text: string, style: Style): void {
  out.push({ text, style: isPlain(style) ? null : { ...style } });
}

/** The text with every escape sequence removed. */
export function stripAnsi(text: string): string {
  if (!text.includes("\x1b")) return text;
  return text.replace(ESCAPE, "");
}

/** CSS classes of a segment's style (scoped under .flarenb-logview in widget.css). */
export function styleClasses(style: Style): string[] {
  const cls: string[] = [];
  if (style.fg) cls.push(`flarenb-ansi-fg-${style.fg}`);
  if (style.bg) cls.push(`flarenb-ansi-bg-${style.bg}`);
  if (style.bold) cls.push("flarenb-ansi-bold");
  if (style.dim) cls.push("flarenb-ansi-dim");
  if (style.italic) cls.push("flarenb-ansi-italic");
  if (style.underline) cls.push("flarenb-ansi-underline");
  return cls;
}
