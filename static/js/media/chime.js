// @ts-check
// Short notes that tell people something happened without looking: someone joined or left
// (people.js), someone waits to be let in (waiting.js). No DOM here.

/** @type {AudioContext | null} */
let context = null;

/**
 * Play `notes` (frequencies in Hz) one after the other, each a soft 0.12 s tone.
 * @param {number[]} notes @param {string} who  for the console when the page has no sound
 */
export function chime(notes, who) {
  try {
    context ||= new AudioContext();
    const ctx = context;
    const start = ctx.currentTime + 0.02;
    notes.forEach((frequency, index) => {
      const tone = ctx.createOscillator();
      const gain = ctx.createGain();
      tone.frequency.value = frequency;
      const at = start + index * 0.13;
      gain.gain.setValueAtTime(0.0001, at);
      gain.gain.exponentialRampToValueAtTime(0.12, at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.12);
      tone.connect(gain).connect(ctx.destination);
      tone.start(at);
      tone.stop(at + 0.13);
    });
  } catch (error) {
    console.warn(`${who}: no sound`, error);
  }
}
