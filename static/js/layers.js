// @ts-check
// Which simulcast layer of each person's camera we ask for (SFU rooms; the mesh has one
// layer and its transport says there is nothing to choose). It follows what the stage
// shows: the pinned tile gets the high layer and the strip under it the low one; with
// nothing pinned the layer follows the grid, high for a few large tiles, medium for a
// middling grid, low for a full one. A UI module: it watches the tiles and asks the
// transport, nothing else.

const HIGH_UP_TO = 2; // other people in the grid
const MEDIUM_UP_TO = 6;

/**
 * @param {object} parts
 * @param {{tiles: HTMLElement}} parts.ui
 * @param {import("./transport/index.js").Transport} parts.transport
 */
export function setupLayers({ ui, transport }) {
  const tiles = ui.tiles;
  let scheduled = false;

  function choose() {
    scheduled = false;
    const people = [...tiles.children].filter(
      (root) => root instanceof HTMLElement && root.dataset.peer && !root.classList.contains("local"),
    );
    const pinned = tiles.querySelector(".tile.pinned");
    const pinnedPeer = pinned instanceof HTMLElement ? pinned.dataset.peer : undefined;
    /** @type {"low" | "medium" | "high"} */
    let grid = "low";
    if (people.length <= HIGH_UP_TO) grid = "high";
    else if (people.length <= MEDIUM_UP_TO) grid = "medium";
    for (const root of people) {
      const id = /** @type {HTMLElement} */ (root).dataset.peer || "";
      const layer = pinned ? (id === pinnedPeer ? "high" : "low") : grid;
      transport.preferLayer(id, layer);
    }
  }

  function later() {
    if (scheduled) return;
    scheduled = true;
    queueMicrotask(choose);
  }

  if (transport.kind !== "sfu") return;
  new MutationObserver(later).observe(tiles, { childList: true, subtree: true, attributeFilter: ["class"] });
  later();
}
