// The chat panel: history (welcome.history, older pages from config.messages_url), live
// messages, unread count, and errors. A message the server refuses is given back to the
// input with the reason, so that nothing typed is lost. It listens to signaling (chat,
// chat-hidden, error) and to the session (our peer id, the end of the call).
//
//   const chat = setupChat({ui, config, signaling, session, moderation, layout});
//   chat.setOpen(open);
import { fmt, gettext } from "./dom.js";
import { CHAT_MAX, chatErrorWords } from "./words.js";

export function setupChat({ ui, config, signaling, session, moderation, layout }) {
  const HISTORY_PAGE = config.history_page_size || 50; // the server's CHAT_HISTORY_SIZE
  const shownIds = new Set();
  let oldestId = null;
  let newestId = null;
  let unread = 0;
  let atBottom = true;
  let lastSent = ""; // the text of our last message until the server echoes it back
  let first = true; // the first welcome brings the whole log

  // --- Open or closed: beside the stage on wide screens, over it on phones ---------------------

  function setOpen(open) {
    ui.call.classList.toggle("chat-closed", !open);
    ui.chatToggle.setAttribute("aria-expanded", String(open));
    ui.chatToggle.classList.toggle("active", open);
    if (open) {
      unread = 0;
      ui.unread.hidden = true;
      if (atBottom || ui.chatLog.scrollTop === 0) scrollToBottom();
    }
    layout();
  }

  ui.chatToggle.addEventListener("click", () => {
    const open = ui.call.classList.contains("chat-closed");
    setOpen(open);
    if (open) ui.chatInput.focus();
  });
  ui.chatClose.addEventListener("click", () => {
    setOpen(false);
    ui.chatToggle.focus();
  });

  // --- Messages ------------------------------------------------------------------------------

  function formatTime(iso) {
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return "";
    const today = new Date();
    const sameDay = date.toDateString() === today.toDateString();
    const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    return sameDay ? time : `${date.toLocaleDateString([], { month: "short", day: "numeric" })} ${time}`;
  }

  function render(message) {
    const item = ui.messageTemplate.content.firstElementChild.cloneNode(true);
    item.dataset.id = String(message.id);
    if (message.from && message.from === session.self.id) item.classList.add("mine");
    item.querySelector(".message-name").textContent = message.name;
    const time = item.querySelector(".message-time");
    time.dateTime = message.sent_at;
    time.textContent = formatTime(message.sent_at);
    time.title = new Date(message.sent_at).toLocaleString();
    item.querySelector(".message-body").textContent = message.body;
    moderation.decorateMessage(item, message);
    return item;
  }

  function isAtBottom() {
    const log = ui.chatLog;
    return log.scrollHeight - log.scrollTop - log.clientHeight < 24;
  }

  function scrollToBottom() {
    ui.chatLog.scrollTop = ui.chatLog.scrollHeight;
    atBottom = true;
    ui.newMessages.hidden = true;
  }

  // The same before the next frame: reading the log's height in the middle of the welcome
  // would make the browser lay the page out there, while the call is starting, and again
  // once the welcome's other changes are in.
  let scrollFrame = 0;
  function scrollToBottomSoon() {
    atBottom = true;
    ui.newMessages.hidden = true;
    if (!scrollFrame) {
      scrollFrame = requestAnimationFrame(() => {
        scrollFrame = 0;
        if (atBottom) scrollToBottom();
      });
    }
  }

  function noteIds(list) {
    for (const message of list) {
      shownIds.add(message.id);
      if (oldestId === null || message.id < oldestId) oldestId = message.id;
      if (newestId === null || message.id > newestId) newestId = message.id;
    }
    ui.chatEmpty.hidden = ui.messages.children.length > 0;
  }

  // welcome.history: on the first join it is the whole log; after a reconnect only what is
  // newer than what we have is added.
  function mergeHistory(history) {
    if (!first) {
      // Messages hidden while we were away: shown here, missing from the history's span.
      const visible = new Set(history.map((m) => m.id));
      const from = history.length < HISTORY_PAGE ? -Infinity : Math.min(...visible);
      for (const item of [...ui.messages.children]) {
        const id = Number(item.dataset.id);
        if (id >= from && !visible.has(id)) item.remove();
      }
    }
    const fresh = history.filter((m) => !shownIds.has(m.id) && (first || newestId === null || m.id > newestId));
    for (const message of fresh) ui.messages.append(render(message));
    noteIds(fresh);
    if (first) ui.loadOlder.hidden = history.length < HISTORY_PAGE;
    first = false;
    scrollToBottomSoon();
  }

  function addLive(message) {
    if (shownIds.has(message.id)) return;
    const wasAtBottom = isAtBottom();
    ui.messages.append(render(message));
    noteIds([message]);
    const mine = message.from === session.self.id;
    if (mine) {
      hideError();
      lastSent = "";
    }
    if (mine || wasAtBottom) scrollToBottom();
    else ui.newMessages.hidden = false;
    if (ui.call.classList.contains("chat-closed") && !mine) {
      unread += 1;
      ui.unread.textContent = unread > 9 ? "9+" : String(unread);
      ui.unread.hidden = false;
    }
  }

  async function loadOlder() {
    if (oldestId === null) return;
    ui.loadOlder.disabled = true;
    try {
      const response = await fetch(`${config.messages_url}?before=${encodeURIComponent(oldestId)}`, {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const page = await response.json();
      const older = page.messages.filter((m) => !shownIds.has(m.id));
      const log = ui.chatLog;
      const fromBottom = log.scrollHeight - log.scrollTop;
      const fragment = document.createDocumentFragment();
      for (const message of older) fragment.append(render(message));
      ui.messages.prepend(fragment);
      noteIds(older);
      log.scrollTop = log.scrollHeight - fromBottom; // keep what the person was reading in place
      ui.loadOlder.hidden = !page.has_more;
    } catch (error) {
      console.warn("chat: older messages", error);
      showError(gettext("Older messages could not be loaded. Try again in a moment."));
    } finally {
      ui.loadOlder.disabled = false;
    }
  }

  // --- Errors: the text goes back to the input ----------------------------------------------------

  // Gives the text of our last message back to the box, unless something new is being
  // typed there. Returns whether it did.
  function giveBack() {
    if (!lastSent || ui.chatInput.value) return false;
    ui.chatInput.value = lastSent;
    return true;
  }

  function showError(text) {
    ui.chatError.textContent = text;
    ui.chatError.hidden = false;
  }

  function hideError() {
    ui.chatError.hidden = true;
    ui.chatError.textContent = "";
  }

  function send() {
    const body = ui.chatInput.value.trim();
    if (!body) return;
    if (body.length > CHAT_MAX) {
      showError(
        fmt(gettext("Messages can be at most %(max)s characters long (this one has %(length)s)."), {
          max: CHAT_MAX.toLocaleString(),
          length: body.length.toLocaleString(),
        }),
      );
      return;
    }
    if (!signaling.send({ type: "chat", body })) {
      showError(gettext("You are not connected right now; the message was not sent."));
      return;
    }
    lastSent = body;
    ui.chatInput.value = "";
    hideError();
  }

  ui.chatForm.addEventListener("submit", (event) => {
    event.preventDefault();
    send();
  });
  ui.chatInput.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send();
    }
  });
  ui.chatLog.addEventListener("scroll", () => {
    atBottom = isAtBottom();
    if (atBottom) ui.newMessages.hidden = true;
  });
  ui.newMessages.addEventListener("click", scrollToBottom);
  ui.loadOlder.addEventListener("click", loadOlder);

  // --- What the server says ------------------------------------------------------------------------

  signaling.on("welcome", (welcome) => mergeHistory(welcome.history || []));
  signaling.on("chat", addLive);
  signaling.on("chat-hidden", ({ id }) => {
    // A moderator hid it. Its id stays known, so a reconnect's history cannot bring it back.
    ui.messages.querySelector(`[data-id="${CSS.escape(String(id))}"]`)?.remove();
    ui.chatEmpty.hidden = ui.messages.children.length > 0;
  });
  signaling.on("error", (error) => {
    if (error.ref === "chat" || (error.code === "rate_limited" && !error.ref)) {
      // Nothing typed is lost: the refused message goes back into the box.
      const restored = giveBack();
      showError(chatErrorWords(error, restored || (lastSent !== "" && ui.chatInput.value === lastSent)));
    }
    else console.warn("call: the server refused a message", error);
  });
  session.on("phase", ({ phase }) => {
    // Someone in the waiting room is not in the call yet: the server would refuse their chat.
    ui.chatInput.disabled = phase === "closed" || phase === "waiting";
  });

  return { setOpen };
}
