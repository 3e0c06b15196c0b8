// Small helpers shared by the call page's UI modules (call.js, tiles.js, chat.js,
// controls.js, moderation.js, files.js, diagnostics.js and the experience modules:
// prejoin.js, devices.js, screenshare.js, media-extras.js, stage.js): translated words,
// elements built without markup strings, icons, avatar colours, and popovers placed by
// their button. All text goes through
// textContent; nothing here writes a style="" attribute (CSP: style-src 'self').

export const gettext = window.gettext || ((text) => text);
export const ngettext = window.ngettext || ((one, many, count) => (count === 1 ? one : many));
const interpolate =
  window.interpolate ||
  ((format, values, named) =>
    named
      ? format.replace(/%\((\w+)\)s/g, (_, key) => String(values[key]))
      : format.replace(/%s/g, () => String(values.shift())));
export const fmt = (format, values) => interpolate(format, values, true);

const SVG_NS = "http://www.w3.org/2000/svg";

// Icons: lists of [tag, attributes], drawn with the stroke style of call.css.
const ICONS = {
  screen: [
    ["rect", { x: 2, y: 3, width: 20, height: 14, rx: 2, ry: 2 }],
    ["line", { x1: 8, y1: 21, x2: 16, y2: 21 }],
    ["line", { x1: 12, y1: 17, x2: 12, y2: 21 }],
  ],
  screenStop: [
    ["rect", { x: 2, y: 3, width: 20, height: 14, rx: 2, ry: 2 }],
    ["line", { x1: 8, y1: 21, x2: 16, y2: 21 }],
    ["line", { x1: 12, y1: 17, x2: 12, y2: 21 }],
    ["line", { x1: 9, y1: 7.5, x2: 15, y2: 12.5 }],
    ["line", { x1: 15, y1: 7.5, x2: 9, y2: 12.5 }],
  ],
  settings: [
    ["circle", { cx: 12, cy: 12, r: 3 }],
    [
      "path",
      {
        d: "M19.4 15a1.65 1.65 0 0 0 .33 1.82l.06.06a2 2 0 1 1-2.83 2.83l-.06-.06a1.65 1.65 0 0 0-1.82-.33 1.65 1.65 0 0 0-1 1.51V21a2 2 0 0 1-4 0v-.09A1.65 1.65 0 0 0 9 19.4a1.65 1.65 0 0 0-1.82.33l-.06.06a2 2 0 1 1-2.83-2.83l.06-.06A1.65 1.65 0 0 0 4.68 15a1.65 1.65 0 0 0-1.51-1H3a2 2 0 0 1 0-4h.09A1.65 1.65 0 0 0 4.6 9a1.65 1.65 0 0 0-.33-1.82l-.06-.06a2 2 0 1 1 2.83-2.83l.06.06A1.65 1.65 0 0 0 9 4.68a1.65 1.65 0 0 0 1-1.51V3a2 2 0 0 1 4 0v.09a1.65 1.65 0 0 0 1 1.51 1.65 1.65 0 0 0 1.82-.33l.06-.06a2 2 0 1 1 2.83 2.83l-.06.06A1.65 1.65 0 0 0 19.4 9a1.65 1.65 0 0 0 1.51 1H21a2 2 0 0 1 0 4h-.09a1.65 1.65 0 0 0-1.51 1z",
      },
    ],
  ],
  keyboard: [
    ["rect", { x: 2, y: 6, width: 20, height: 12, rx: 2, ry: 2 }],
    ["line", { x1: 6, y1: 10, x2: 6.01, y2: 10 }],
    ["line", { x1: 10, y1: 10, x2: 10.01, y2: 10 }],
    ["line", { x1: 14, y1: 10, x2: 14.01, y2: 10 }],
    ["line", { x1: 18, y1: 10, x2: 18.01, y2: 10 }],
    ["line", { x1: 8, y1: 14, x2: 16, y2: 14 }],
  ],
  pin: [
    ["line", { x1: 12, y1: 17, x2: 12, y2: 22 }],
    ["path", { d: "M5 17h14v-1.76a2 2 0 0 0-1.11-1.79l-1.78-.9A2 2 0 0 1 15 10.76V6h1a2 2 0 0 0 0-4H8a2 2 0 0 0 0 4h1v4.76a2 2 0 0 1-1.11 1.79l-1.78.9A2 2 0 0 0 5 15.24z" }],
  ],
  unpin: [
    ["line", { x1: 2, y1: 2, x2: 22, y2: 22 }],
    ["line", { x1: 12, y1: 17, x2: 12, y2: 22 }],
    ["path", { d: "M9 9v1.76a2 2 0 0 1-1.11 1.79l-1.78.9A2 2 0 0 0 5 15.24V17h12" }],
    ["path", { d: "M15 9.34V6h1a2 2 0 0 0 0-4H7.89" }],
  ],
  expand: [
    ["polyline", { points: "15 3 21 3 21 9" }],
    ["polyline", { points: "9 21 3 21 3 15" }],
    ["line", { x1: 21, y1: 3, x2: 14, y2: 10 }],
    ["line", { x1: 3, y1: 21, x2: 10, y2: 14 }],
  ],
  shrink: [
    ["polyline", { points: "4 14 10 14 10 20" }],
    ["polyline", { points: "20 10 14 10 14 4" }],
    ["line", { x1: 14, y1: 10, x2: 21, y2: 3 }],
    ["line", { x1: 3, y1: 21, x2: 10, y2: 14 }],
  ],
  mic: [
    ["path", { d: "M12 2a3 3 0 0 0-3 3v7a3 3 0 0 0 6 0V5a3 3 0 0 0-3-3z" }],
    ["path", { d: "M19 10v2a7 7 0 0 1-14 0v-2" }],
    ["line", { x1: 12, y1: 19, x2: 12, y2: 23 }],
    ["line", { x1: 8, y1: 23, x2: 16, y2: 23 }],
  ],
  micOff: [
    ["line", { x1: 1, y1: 1, x2: 23, y2: 23 }],
    ["path", { d: "M9 9v3a3 3 0 0 0 5.12 2.12M15 9.34V4a3 3 0 0 0-5.94-.6" }],
    ["path", { d: "M17 16.95A7 7 0 0 1 5 12v-2m14 0v2a7 7 0 0 1-.11 1.23" }],
    ["line", { x1: 12, y1: 19, x2: 12, y2: 23 }],
    ["line", { x1: 8, y1: 23, x2: 16, y2: 23 }],
  ],
  camera: [
    ["polygon", { points: "23 7 16 12 23 17 23 7" }],
    ["rect", { x: 1, y: 5, width: 15, height: 14, rx: 2, ry: 2 }],
  ],
  speaker: [
    ["polygon", { points: "11 5 6 9 2 9 2 15 6 15 11 19 11 5" }],
    ["path", { d: "M19.07 4.93a10 10 0 0 1 0 14.14M15.54 8.46a5 5 0 0 1 0 7.07" }],
  ],
  people: [
    ["path", { d: "M17 21v-2a4 4 0 0 0-4-4H5a4 4 0 0 0-4 4v2" }],
    ["circle", { cx: 9, cy: 7, r: 4 }],
    ["path", { d: "M23 21v-2a4 4 0 0 0-3-3.87" }],
    ["path", { d: "M16 3.13a4 4 0 0 1 0 7.75" }],
  ],
  // Moderation (moderation.js): tile and room menus, the Hide button on chat messages.
  more: [
    ["circle", { cx: 12, cy: 5, r: 1.6 }],
    ["circle", { cx: 12, cy: 12, r: 1.6 }],
    ["circle", { cx: 12, cy: 19, r: 1.6 }],
  ],
  shield: [["path", { d: "M12 22s8-4 8-10V5l-8-3-8 3v7c0 6 8 10 8 10z" }]],
  // Picture in picture (pip.js): a small window in a big one.
  pip: [
    ["rect", { x: 2, y: 4, width: 20, height: 16, rx: 2 }],
    ["rect", { x: 12, y: 12, width: 7, height: 5, rx: 1 }],
  ],
  // A guest (people.js), and the invite links of the room menu (invites.js).
  guest: [
    ["circle", { cx: 12, cy: 8, r: 4 }],
    ["path", { d: "M4 21v-1a7 7 0 0 1 14 0v1" }],
  ],
  link: [
    ["path", { d: "M10 13a5 5 0 0 0 7.54.54l3-3a5 5 0 0 0-7.07-7.07l-1.72 1.71" }],
    ["path", { d: "M14 11a5 5 0 0 0-7.54-.54l-3 3a5 5 0 0 0 7.07 7.07l1.71-1.71" }],
  ],
  // The menu's "Mute": micOff without the stand's base line.
  mute: [
    ["line", { x1: 1, y1: 1, x2: 23, y2: 23 }],
    ["path", { d: "M9 9v3a3 3 0 0 0 5.12 2.12M15 9.34V4a3 3 0 0 0-5.94-.6" }],
    ["path", { d: "M17 16.95A7 7 0 0 1 5 12v-2m14 0v2a7 7 0 0 1-.11 1.23" }],
    ["line", { x1: 12, y1: 19, x2: 12, y2: 23 }],
  ],
  camOff: [
    ["path", { d: "M16 16v1a2 2 0 0 1-2 2H3a2 2 0 0 1-2-2V7a2 2 0 0 1 2-2h2m5.66 0H14a2 2 0 0 1 2 2v3.34l1 1L23 7v10" }],
    ["line", { x1: 1, y1: 1, x2: 23, y2: 23 }],
  ],
  star: [["polygon", { points: "12 2 15.09 8.26 22 9.27 17 14.14 18.18 21.02 12 17.77 5.82 21.02 7 14.14 2 9.27 8.91 8.26 12 2" }]],
  remove: [
    ["path", { d: "M16 21v-2a4 4 0 0 0-4-4H5a4 4 0 0 0-4 4v2" }],
    ["circle", { cx: 8.5, cy: 7, r: 4 }],
    ["line", { x1: 18, y1: 8, x2: 23, y2: 13 }],
    ["line", { x1: 23, y1: 8, x2: 18, y2: 13 }],
  ],
  ban: [
    ["circle", { cx: 12, cy: 12, r: 10 }],
    ["line", { x1: 4.93, y1: 4.93, x2: 19.07, y2: 19.07 }],
  ],
  lock: [
    ["rect", { x: 3, y: 11, width: 18, height: 11, rx: 2, ry: 2 }],
    ["path", { d: "M7 11V7a5 5 0 0 1 10 0v4" }],
  ],
  unlock: [
    ["rect", { x: 3, y: 11, width: 18, height: 11, rx: 2, ry: 2 }],
    ["path", { d: "M7 11V7a5 5 0 0 1 9.9-1" }],
  ],
  end: [
    ["circle", { cx: 12, cy: 12, r: 10 }],
    ["rect", { x: 9, y: 9, width: 6, height: 6 }],
  ],
  hide: [
    ["path", { d: "M17.94 17.94A10.07 10.07 0 0 1 12 20c-7 0-11-8-11-8a18.45 18.45 0 0 1 5.06-5.94" }],
    ["path", { d: "M9.9 4.24A9.12 9.12 0 0 1 12 4c7 0 11 8 11 8a18.5 18.5 0 0 1-2.16 3.19" }],
    ["line", { x1: 1, y1: 1, x2: 23, y2: 23 }],
  ],
  // The meeting (hands.js, reactions.js): raise a hand, react.
  hand: [
    ["path", { d: "M18 11V6a2 2 0 0 0-4 0" }],
    ["path", { d: "M14 10V4a2 2 0 0 0-4 0v2" }],
    ["path", { d: "M10 10.5V6a2 2 0 0 0-4 0v8" }],
    ["path", { d: "M18 8a2 2 0 1 1 4 0v6a8 8 0 0 1-8 8h-2c-2.8 0-4.5-.86-5.99-2.34l-3.6-3.6a2 2 0 0 1 2.83-2.82L7 15" }],
  ],
  record: [
    ["circle", { cx: 12, cy: 12, r: 10 }],
    ["circle", { cx: 12, cy: 12, r: 4, fill: "currentColor" }],
  ],
  smile: [
    ["circle", { cx: 12, cy: 12, r: 10 }],
    ["path", { d: "M8 14s1.5 2 4 2 4-2 4-2" }],
    ["line", { x1: 9, y1: 9, x2: 9.01, y2: 9 }],
    ["line", { x1: 15, y1: 9, x2: 15.01, y2: 9 }],
  ],
  // Files (files.js): the send button, transfer cards.
  paperclip: [
    ["path", { d: "M21.44 11.05l-9.19 9.19a6 6 0 0 1-8.49-8.49l9.19-9.19a4 4 0 0 1 5.66 5.66l-9.2 9.19a2 2 0 0 1-2.83-2.83l8.49-8.48" }],
  ],
  fileIn: [
    ["path", { d: "M14 2H6a2 2 0 0 0-2 2v16a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V8z" }],
    ["polyline", { points: "14 2 14 8 20 8" }],
    ["line", { x1: 12, y1: 11, x2: 12, y2: 17 }],
    ["polyline", { points: "9 14 12 17 15 14" }],
  ],
  fileOut: [
    ["path", { d: "M14 2H6a2 2 0 0 0-2 2v16a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V8z" }],
    ["polyline", { points: "14 2 14 8 20 8" }],
    ["line", { x1: 12, y1: 18, x2: 12, y2: 12 }],
    ["polyline", { points: "9 15 12 12 15 15" }],
  ],
  close: [
    ["line", { x1: 18, y1: 6, x2: 6, y2: 18 }],
    ["line", { x1: 6, y1: 6, x2: 18, y2: 18 }],
  ],
  download: [
    ["path", { d: "M21 15v4a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2v-4" }],
    ["polyline", { points: "7 10 12 15 17 10" }],
    ["line", { x1: 12, y1: 15, x2: 12, y2: 3 }],
  ],
};

export function icon(name) {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  for (const [tag, attributes] of ICONS[name]) {
    const shape = document.createElementNS(SVG_NS, tag);
    for (const [key, value] of Object.entries(attributes)) shape.setAttribute(key, String(value));
    svg.append(shape);
  }
  return svg;
}

// el("button", {type: "button", className: "x", text: "Hello", "aria-label": "..."}, ...children)
export function el(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (key === "text") element.textContent = value;
    else if (key === "className") element.className = value;
    else element.setAttribute(key, value === true ? "" : String(value));
  }
  element.append(...children.filter((child) => child !== null && child !== undefined && child !== false));
  return element;
}

// A button's words: the accessible name and the tooltip say the same.
export function label(button, text) {
  if (button.getAttribute("aria-label") === text) return;
  button.setAttribute("aria-label", text);
  button.title = text;
}

// A person's avatar: the first letter of their name and a colour (the CSS variable
// --avatar-hue), the same from the same name on their tile, the pre-join screen and file
// transfers.
export const avatarInitial = (name) => (Array.from(name.trim())[0] || "?").toUpperCase();

export function avatarHue(name) {
  let hash = 0;
  for (const ch of name) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return String(hash % 360);
}

let popoverCount = 0;
// CSS anchor positioning: where the browser lacks it, place() puts a popover by its button.
export const anchorPositioning = typeof CSS !== "undefined" && CSS.supports("position-area: bottom");

// A popover (top layer, light dismiss) opened by `button`. `placement`: "above" (controls at
// the bottom) or "below" (buttons on tiles). onOpen() fills or refreshes it.
export function popover(button, { className, title, placement = "above", role = "dialog", onOpen = null }) {
  popoverCount += 1;
  const panel = el("div", {
    className: `xp-popover ${placement} ${className || ""}`.trim(),
    id: `xp-popover-${popoverCount}`,
    role,
    popover: "auto",
    "aria-label": title,
  });
  button.setAttribute("popovertarget", panel.id);
  // An explicit anchor: the popover sits by its button however it was opened (a click, or
  // a keyboard shortcut calling togglePopover()).
  button.style.setProperty("anchor-name", `--${panel.id}`);
  panel.style.setProperty("position-anchor", `--${panel.id}`);
  button.setAttribute("aria-haspopup", role === "menu" ? "menu" : "dialog");
  button.setAttribute("aria-controls", panel.id);
  button.setAttribute("aria-expanded", "false");
  panel.addEventListener("beforetoggle", (event) => {
    if (event.newState === "open") onOpen?.(panel);
  });
  panel.addEventListener("toggle", (event) => {
    const open = event.newState === "open";
    button.setAttribute("aria-expanded", String(open));
    button.classList.toggle("open", open);
    if (open && !anchorPositioning) place(panel, button, placement);
  });
  return panel;
}

// Without CSS anchor positioning: put the popover by its button, inside the window, `gap`
// pixels from it; centred on the button, or with `align: "end"` flush with its right edge.
export function place(panel, button, placement, { gap = 8, align = "center" } = {}) {
  const anchor = button.getBoundingClientRect();
  const box = panel.getBoundingClientRect();
  const margin = 8;
  let top = placement === "above" ? anchor.top - box.height - gap : anchor.bottom + gap;
  if (top + box.height > innerHeight - margin) top = anchor.top - box.height - gap;
  if (top < margin) top = margin;
  let left = align === "end" ? anchor.right - box.width : anchor.left + anchor.width / 2 - box.width / 2;
  left = Math.max(margin, Math.min(left, innerWidth - box.width - margin));
  panel.style.setProperty("left", `${Math.round(left)}px`);
  panel.style.setProperty("top", `${Math.round(top)}px`);
}

// Is the person typing somewhere (a shortcut letter must stay a letter there)?
export function isTyping(target) {
  if (!(target instanceof Element)) return false;
  if (target.isContentEditable) return true;
  return Boolean(target.closest("input, textarea, select, [contenteditable=''], [contenteditable='true']"));
}
