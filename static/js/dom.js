// Small helpers shared by the call page's experience modules (prejoin.js, devices.js,
// screenshare.js, media-extras.js, stage.js): translated words, elements built without
// markup strings, icons, and popovers placed by their button. All text goes through
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

let popoverCount = 0;
const anchorPositioning = typeof CSS !== "undefined" && CSS.supports("position-area: bottom");

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

// Without CSS anchor positioning: put the popover by its button, inside the window.
export function place(panel, button, placement) {
  const anchor = button.getBoundingClientRect();
  const box = panel.getBoundingClientRect();
  const gap = 8;
  const margin = 8;
  let top = placement === "above" ? anchor.top - box.height - gap : anchor.bottom + gap;
  if (top + box.height > innerHeight - margin) top = anchor.top - box.height - gap;
  if (top < margin) top = margin;
  let left = anchor.left + anchor.width / 2 - box.width / 2;
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
