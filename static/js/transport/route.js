// @ts-check
// Which candidate pair carries a connection's media, read from its getStats() report.
//
// Chromium names it on the transport report (selectedCandidatePairId). Firefox has no
// transport report: it marks the pair in use with a field of its own, `selected`, and may
// list several pairs as nominated and succeeded at once, since the controlling side can
// nominate again (each side gathers a relay per local interface, for one). "The first
// nominated pair" may then name a pair the media no longer takes.

/**
 * The candidate-pair report the media takes, or null before ICE has chosen one.
 * @param {RTCStatsReport} stats
 * @returns {any}
 */
export function selectedPair(stats) {
  let pair = null;
  stats.forEach((report) => {
    if (report.type === "transport" && report.selectedCandidatePairId) {
      pair = stats.get(report.selectedCandidatePairId) || pair;
    }
  });
  if (pair) return pair;
  stats.forEach((report) => {
    if (report.type === "candidate-pair" && report.selected) pair = report;
  });
  if (pair) return pair;
  // Neither field (an older engine): a nominated pair that works is the best guess.
  stats.forEach((report) => {
    if (report.type === "candidate-pair" && report.nominated && report.state === "succeeded") pair = pair || report;
  });
  return pair;
}
