// @ts-check
// Reactions on the call page (docs/protocol.md, `reaction`): the React button and its
// picker, and each reaction floating up over its sender's tile for everyone. The server
// names the reactions (welcome.reactions) and limits them; the page holds its buttons
// back by the same bucket (room-config `reaction_limit`), so nobody clicking is refused.
//
//   setupReactions({ui, config, session, tiles});
import { el, fmt, gettext, icon, label, popover } from "./dom.js";

const FLOAT_MS = 3200; // the CSS animation's length; the element goes after it in any case

/** What each reaction looks like, and its name for people. @type {Record<string, {emoji: string, words: () => string}>} */
const LOOKS = {
  "thumbs-up": { emoji: "👍", words: () => gettext("Thumbs up") },
  clap: { emoji: "👏", words: () => gettext("Applause") },
  laugh: { emoji: "😂", words: () => gettext("Laughter") },
  heart: { emoji: "❤️", words: () => gettext("Love") },
  party: { emoji: "🎉", words: () => gettext("Celebration") },
  surprised: { emoji: "😮", words: () => gettext("Surprise") },
};

/**
 * @param {object} options
 * @param {Record<string, HTMLElement>} options.ui
 * @param {Record<string, any>} options.config  room-config
 * @param {import("./session.js").CallSession} options.session
 * @param {{rootOf(id: string | null): HTMLElement | null}} options.tiles
 */
export function setupReactions({ ui, config, session, tiles }) {
  const button = el("button", { type: "button", className: "control react-button", id: "react" }, icon("smile"));
  label(button, gettext("React"));
  const picker = popover(button, { className: "reaction-picker", title: gettext("Reactions"), placement: "above" });
  ui.chatToggle.before(button);
  ui.chatToggle.parentElement?.append(picker);

  // The server's bucket, kept here too: a full bucket, one token back every 1/rate s.
  const rate = Number(config.reaction_limit?.rate) || 1;
  const burst = Number(config.reaction_limit?.burst) || 5;
  let tokens = burst;
  let stamp = performance.now();
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let refill;

  function take() {
    const now = performance.now();
    tokens = Math.min(burst, tokens + ((now - stamp) / 1000) * rate);
    stamp = now;
    if (tokens < 1) return false;
    tokens -= 1;
    return true;
  }

  function paintPicker() {
    const now = performance.now();
    const available = Math.min(burst, tokens + ((now - stamp) / 1000) * rate) >= 1;
    for (const choice of picker.querySelectorAll("button")) /** @type {HTMLButtonElement} */ (choice).disabled = !available;
    clearTimeout(refill);
    if (!available) refill = setTimeout(paintPicker, Math.ceil(((1 - tokens) / rate) * 1000) + 20);
  }

  let filledWith = ""; // the reactions the picker holds now
  function fillPicker() {
    if (session.reactions.join() === filledWith) return;
    filledWith = session.reactions.join();
    picker.replaceChildren(
      ...session.reactions
        .filter((name) => LOOKS[name])
        .map((name) => {
          const choice = el("button", { type: "button", className: "reaction-choice", "data-reaction": name, text: LOOKS[name].emoji });
          label(choice, LOOKS[name].words());
          choice.addEventListener("click", () => {
            if (take()) session.react(name);
            paintPicker();
          });
          return choice;
        }),
    );
    paintPicker();
  }

  function paintButton() {
    button.disabled = session.phase !== "joined" || session.reactions.length === 0;
    if (button.disabled && picker.matches(":popover-open")) picker.hidePopover();
  }

  session.on("self", fillPicker); // every welcome says which reactions the server takes
  session.on("phase", paintButton);
  paintButton();

  session.on("reaction", ({ id, name, reaction }) => {
    const look = LOOKS[reaction];
    const root = tiles.rootOf(id === session.self.id ? null : id);
    if (!look || !root) return;
    const float = el("span", { className: "reaction-float", role: "img", text: look.emoji });
    float.setAttribute("aria-label", fmt(gettext("%(name)s: %(reaction)s"), { name, reaction: look.words() }));
    // A little apart from each other when several come at once.
    float.style.setProperty("--reaction-x", `${Math.round(15 + Math.random() * 60)}%`);
    root.append(float);
    const gone = () => float.remove();
    float.addEventListener("animationend", gone, { once: true });
    setTimeout(gone, FLOAT_MS + 500);
  });
}
