// @ts-check
// A WebM from MediaRecorder says nothing of its length: browsers write the Segment's Info
// before they know it, without a Duration (Chromium) or with 0 (Firefox), so players show
// no length and cannot seek. withDuration() writes it in (Firefox's 0 is overwritten in
// place): the Info element is rebuilt with a
// Duration (EBML id 0x4489, a 64-bit float in TimecodeScale units) and its size rewritten.
// The Segment's own size is "unknown" in these files, so growing Info moves nothing else.
// Pure functions on bytes: no DOM.

const SEGMENT = 0x18538067;
const INFO = 0x1549a966;
const TIMECODE_SCALE = 0x2ad7b1;
const DURATION = 0x4489;

/** An EBML variable-length integer at `at`: {value, length}; value -1 when "unknown". @param {Uint8Array} bytes @param {number} at */
function vint(bytes, at) {
  const first = bytes[at];
  let length = 1;
  while (length <= 8 && !(first & (0x80 >> (length - 1)))) length += 1;
  if (length > 8) throw new Error("webm: bad variable-length integer");
  let value = first & (0xff >> length);
  let unknown = value === (0xff >> length);
  for (let i = 1; i < length; i += 1) {
    value = value * 256 + bytes[at + i];
    unknown &&= bytes[at + i] === 0xff;
  }
  return { value: unknown ? -1 : value, length };
}

/** An element id at `at` (its marker bits kept, as ids are written): {id, length}. @param {Uint8Array} bytes @param {number} at */
function elementId(bytes, at) {
  const { length } = vint(bytes, at);
  let id = 0;
  for (let i = 0; i < length; i += 1) id = id * 256 + bytes[at + i];
  return { id, length };
}

/** @param {Uint8Array} bytes @param {number} at */
function header(bytes, at) {
  const id = elementId(bytes, at);
  const size = vint(bytes, at + id.length);
  return { id: id.id, size: size.value, start: at + id.length + size.length };
}

/**
 * The bytes of a WebM with its Duration set to `durationMs` (milliseconds), or the same
 * bytes if it knows its duration already or is not laid out as MediaRecorder writes it.
 * @param {Uint8Array} bytes @param {number} durationMs
 * @returns {Uint8Array}
 */
export function withDuration(bytes, durationMs) {
  try {
    const ebml = header(bytes, 0);
    const segment = header(bytes, ebml.start + ebml.size);
    if (segment.id !== SEGMENT) return bytes;
    let at = segment.start;
    for (let guard = 0; guard < 64 && at < bytes.length; guard += 1) {
      const child = header(bytes, at);
      if (child.size < 0) return bytes; // a Cluster of unknown size before any Info
      if (child.id === INFO) return rebuildInfo(bytes, at, child, durationMs);
      at = child.start + child.size;
    }
  } catch (error) {
    console.warn("webm: left as it was", error);
  }
  return bytes;
}

/** @param {Uint8Array} bytes @param {number} at @param {{start: number, size: number}} info @param {number} durationMs */
function rebuildInfo(bytes, at, info, durationMs) {
  let scale = 1_000_000; // nanoseconds per tick: the default, milliseconds
  /** @type {{start: number, size: number} | null} */
  let written = null; // a Duration already there (Firefox writes 0)
  for (let p = info.start; p < info.start + info.size; ) {
    const field = header(bytes, p);
    if (field.id === DURATION) written = field;
    if (field.id === TIMECODE_SCALE) {
      scale = 0;
      for (let i = 0; i < field.size; i += 1) scale = scale * 256 + bytes[field.start + i];
    }
    p = field.start + field.size;
  }
  const ticks = (durationMs * 1_000_000) / scale;
  if (written) {
    if (written.size !== 4 && written.size !== 8) return bytes;
    const view = new DataView(bytes.buffer, bytes.byteOffset + written.start, written.size);
    if ((written.size === 8 ? view.getFloat64(0) : view.getFloat32(0)) > 0) return bytes; // known
    const out = bytes.slice();
    const into = new DataView(out.buffer, written.start, written.size);
    if (written.size === 8) into.setFloat64(0, ticks);
    else into.setFloat32(0, ticks);
    return out;
  }
  const duration = new Uint8Array(11);
  duration.set([0x44, 0x89, 0x88]); // id, size 8
  new DataView(duration.buffer).setFloat64(3, ticks);
  const size = info.size + duration.length;
  // The new size as an 8-byte vint: 0x01 then 7 bytes.
  const sizeBytes = new Uint8Array(8);
  sizeBytes[0] = 0x01;
  for (let i = 7, rest = size; i >= 1; i -= 1, rest = Math.floor(rest / 256)) sizeBytes[i] = rest & 0xff;
  const infoId = bytes.subarray(at, at + 4);
  const out = new Uint8Array(bytes.length + sizeBytes.length + duration.length - (info.start - at - 4));
  let p = 0;
  for (const part of [bytes.subarray(0, at), infoId, sizeBytes, bytes.subarray(info.start, info.start + info.size), duration, bytes.subarray(info.start + info.size)]) {
    out.set(part, p);
    p += part.length;
  }
  return out;
}
