// @ts-check
// Sound levels of audio tracks, through Web Audio: one AudioContext for the page, and a
// meter per track (the speaking ring, the active speaker, the pre-join microphone level).
// No DOM here. Browsers start an AudioContext suspended until the person interacts with
// the page: the page calls resumeAudio() on a gesture.

/** @type {AudioContext | null} */
let context = null;

/** The page's AudioContext, once a meter made it (null before). */
export function audioContext() {
  return context;
}

export function resumeAudio() {
  context?.resume().catch(() => {});
}

/**
 * @typedef {{level(): number, disconnect(): void}} LevelMeter
 * level(): the loudest 10 ms (RMS) of the last ~170 ms of sound.
 */

/**
 * @param {MediaStream} stream holding one audio track
 * @returns {LevelMeter | null}
 */
export function levelMeter(stream) {
  // @ts-ignore: webkitAudioContext in old Safari
  const Context = globalThis.AudioContext || globalThis.webkitAudioContext;
  if (!Context) return null;
  try {
    context = context || new Context();
    const source = context.createMediaStreamSource(stream);
    const analyser = context.createAnalyser();
    // Each look sees the last ~170 ms of sound, longer than the 100 ms between looks, so a
    // short sound (a syllable, the fake microphone's 35 ms beep) is never missed between
    // two looks. The level is the loudest 10 ms inside that window: averaging over the whole
    // window would drown a short sound in the silence around it.
    analyser.fftSize = 8192;
    source.connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    const block = Math.max(1, Math.round(context.sampleRate / 100));
    return {
      level() {
        analyser.getFloatTimeDomainData(samples);
        let loudest = 0;
        for (let start = 0; start < samples.length; start += block) {
          const end = Math.min(samples.length, start + block);
          let sum = 0;
          for (let i = start; i < end; i += 1) sum += samples[i] * samples[i];
          loudest = Math.max(loudest, sum / (end - start));
        }
        return Math.sqrt(loudest);
      },
      disconnect() {
        source.disconnect();
      },
    };
  } catch (error) {
    console.warn("call: no level meter", error);
    return null;
  }
}
