// The stage: pin (enlarge) a tile with its pin button or a double-click, full screen for a
// tile or the whole call (Fullscreen API), keyboard shortcuts (M, V, C, S, ?) and the "?"
// popover that lists them.
import { el, fmt, gettext, icon, isTyping, label, popover } from "./dom.js";

export function setupStage({ ui, isVoice, session, layout }) {
  const tiles = ui.tiles;
  let pinned = null; // the pinned tile's root element
  const fullscreenSupported = Boolean(document.fullscreenEnabled && Element.prototype.requestFullscreen);

  // --- Pin ----------------------------------------------------------------------------------

  function tileName(root) {
    return root.getAttribute("aria-label") || "";
  }

  function setPinned(root) {
    if (pinned && pinned !== root) pinned.classList.remove("pinned");
    pinned = root && root.isConnected ? root : null;
    pinned?.classList.add("pinned");
    tiles.classList.toggle("has-pinned", Boolean(pinned));
    for (const tile of tiles.children) paintTools(tile);
    pinLayout();
  }

  // Pinned: the others in one strip below (as wide as fits, 96 to 200 px each), the pinned
  // tile in the rest of the height. More people than fit wrap and the stage scrolls.
  function pinLayout() {
    if (!pinned) return;
    const style = getComputedStyle(tiles);
    const gap = parseFloat(style.rowGap) || 0;
    const width = tiles.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    const height = tiles.clientHeight - parseFloat(style.paddingTop) - parseFloat(style.paddingBottom);
    const others = Math.max(0, tiles.children.length - 1);
    const aspect = isVoice ? 3 / 4 : 9 / 16;
    const strip = others ? Math.max(96, Math.min(200, (width - gap * (others - 1)) / others)) : 0;
    const stripHeight = others ? strip * aspect + gap : 0;
    tiles.style.setProperty("--strip-width", `${Math.floor(strip)}px`);
    tiles.style.setProperty("--pinned-height", `${Math.max(160, Math.floor(height - stripHeight))}px`);
  }

  new ResizeObserver(() => pinLayout()).observe(tiles);

  function togglePin(root) {
    setPinned(pinned === root ? null : root);
  }

  // A pinned tile that goes away (the person left, the share stopped) unpins.
  new MutationObserver(() => {
    if (pinned && !pinned.isConnected) setPinned(null);
    else pinLayout();
  }).observe(tiles, { childList: true });

  tiles.addEventListener("dblclick", (event) => {
    if (event.target.closest("button, a, [popover]")) return;
    const root = event.target.closest(".tile");
    if (root && tiles.contains(root)) {
      window.getSelection()?.removeAllRanges();
      togglePin(root);
    }
  });

  // --- Full screen --------------------------------------------------------------------------

  function toggleFullscreen(element) {
    if (document.fullscreenElement === element) return document.exitFullscreen().catch(() => {});
    return element.requestFullscreen().catch((error) => console.warn("stage: full screen refused", error));
  }

  // The whole call (stage and chat) from the header.
  const callButton = fullscreenSupported
    ? el("button", { type: "button", className: "stage-button xp-fullscreen-call" }, icon("expand"), icon("shrink"))
    : null;
  callButton?.addEventListener("click", () => toggleFullscreen(ui.call));
  ui.call.querySelector(".stage-meta")?.append(...(callButton ? [callButton] : []));

  document.addEventListener("fullscreenchange", () => {
    for (const tile of tiles.children) paintTools(tile);
    paintCallButton();
    layout();
  });

  function paintCallButton() {
    if (!callButton) return;
    const on = document.fullscreenElement === ui.call;
    callButton.classList.toggle("on", on);
    label(callButton, on ? gettext("Exit full screen") : gettext("Show the call full screen"));
  }
  paintCallButton();

  // --- Tile tools: pin and full screen ------------------------------------------------------------

  function decorate(root) {
    if (!root.querySelector(":scope > .tile-tools")) {
      const pin = el("button", { type: "button", className: "tile-tool tile-pin" }, icon("pin"), icon("unpin"));
      pin.addEventListener("click", () => togglePin(root));
      const tools = el("div", { className: "tile-tools" }, pin);
      if (fullscreenSupported) {
        const full = el("button", { type: "button", className: "tile-tool tile-fullscreen" }, icon("expand"), icon("shrink"));
        full.addEventListener("click", () => toggleFullscreen(root));
        tools.append(full);
      }
      root.append(tools);
    }
    paintTools(root);
  }

  function paintTools(root) {
    const pin = root.querySelector(":scope > .tile-tools .tile-pin");
    if (!pin) return;
    const name = tileName(root);
    const isPinned = root === pinned;
    pin.classList.toggle("on", isPinned);
    pin.setAttribute("aria-pressed", String(isPinned));
    label(pin, isPinned ? fmt(gettext("Unpin %(name)s"), { name }) : fmt(gettext("Pin %(name)s"), { name }));
    const full = root.querySelector(":scope > .tile-tools .tile-fullscreen");
    if (full) {
      const on = document.fullscreenElement === root;
      full.classList.toggle("on", on);
      label(full, on ? gettext("Exit full screen") : fmt(gettext("Show %(name)s full screen"), { name }));
    }
  }

  // --- Keyboard shortcuts ---------------------------------------------------------------------------

  const SHORTCUTS = [
    ["M", () => gettext("Mute or unmute your microphone")],
    ...(isVoice ? [] : [["V", () => gettext("Turn your camera off or on")]]),
    ["C", () => gettext("Open or close the chat")],
    ...(isVoice ? [] : [["S", () => gettext("Share your screen, or stop sharing it")]]),
    ["H", () => gettext("Raise or lower your hand")],
    [gettext("Space"), () => gettext("Hold to talk while muted (when push to talk is on)")],
    ["?", () => gettext("Show these shortcuts")],
  ];

  const helpButton = el("button", { type: "button", className: "control xp-help-button" }, icon("keyboard"));
  label(helpButton, gettext("Keyboard shortcuts"));
  const help = popover(helpButton, { className: "xp-help", title: gettext("Keyboard shortcuts") });
  const list = el("dl", { className: "xp-shortcuts" });
  for (const [key, words] of SHORTCUTS) list.append(el("dt", {}, el("kbd", { text: key })), el("dd", { text: words() }));
  help.append(
    el("h2", { className: "xp-popover-title", text: gettext("Keyboard shortcuts") }),
    list,
    el("p", { className: "xp-help-note", text: gettext("Shortcuts do nothing while you type in the chat. Double-click a tile to pin it.") }),
  );

  let enabled = false; // from the moment the person joins (not on the pre-join screen)
  let screen = null;

  function press(button) {
    if (button && !button.disabled && !button.hidden) button.click();
  }

  document.addEventListener("keydown", (event) => {
    if (!enabled || event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return;
    if (isTyping(event.target) || document.querySelector("dialog[open]")) return;
    if (session.ended) return;
    if (event.key === "?") {
      event.preventDefault();
      help.togglePopover();
      return;
    }
    if (event.repeat) return;
    const action = {
      m: () => press(ui.mic),
      v: () => press(ui.camera),
      c: () => press(ui.chatToggle),
      s: () => press(screen?.button),
      h: () => press(document.getElementById("toggle-hand")),
    }[event.key.toLowerCase()];
    if (!action) return;
    event.preventDefault();
    action();
  });

  return {
    decorate,
    togglePin,
    setPinned,
    helpButton,
    help,
    callButton,
    get pinned() {
      return pinned;
    },
    enableShortcuts(screenShare) {
      screen = screenShare;
      enabled = true;
    },
  };
}
