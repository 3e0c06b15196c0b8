// Live lobby: the server publishes a room's summary whenever it changes
// (docs/protocol.md, "The lobby socket"); this keeps the list in step without reloads.
const gettext = window.gettext || ((s) => s);
const list = document.getElementById("room-list");
const empty = document.getElementById("rooms-empty");
const template = document.getElementById("room-item-template");
const live = document.getElementById("lobby-live");

function render(room) {
  const item = template.content.firstElementChild.cloneNode(true);
  item.dataset.slug = room.slug;
  item.classList.toggle("full", room.occupancy >= room.capacity);
  item.querySelector(".room-link").href = room.url;
  item.querySelector(".room-name").textContent = room.name;
  item.querySelector(".badge.kind").textContent = room.kind === "voice" ? gettext("voice") : gettext("video");
  item.querySelector(".badge.private").hidden = !room.is_private;
  item.querySelector(".badge.locked").hidden = !room.is_locked;
  item.querySelector(".occupancy-count").textContent = `${room.occupancy} / ${room.capacity}`;
  item.querySelector(".names").textContent = room.names.join(", ");
  return item;
}

function update(room) {
  const current = list.querySelector(`[data-slug="${CSS.escape(room.slug)}"]`);
  if (current) current.remove();
  if (room.is_open) list.prepend(render(room)); // newest activity first
  empty.hidden = list.children.length > 0;
}

let delay = 1000;
function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/ws/lobby/`);
  socket.addEventListener("open", () => {
    delay = 1000;
    live.classList.add("on");
  });
  socket.addEventListener("message", (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "room") update(message.room);
  });
  socket.addEventListener("close", () => {
    live.classList.remove("on");
    // Back off with jitter so a restarted server is not hit by every lobby at once.
    setTimeout(connect, delay + Math.random() * delay);
    delay = Math.min(delay * 2, 30000);
  });
}
connect();
