// @ts-check
// A tiny event emitter for the call page's modules (no DOM). `on` returns a function that
// unsubscribes; `emit` calls every handler in order and returns what they returned, so a
// caller that must wait for asynchronous handlers can `await Promise.all(emitter.emit(...))`.
// A handler that throws is logged and does not stop the others.

export class Emitter {
  constructor() {
    /** @type {Map<string, Set<Function>>} */
    this.handlers = new Map();
  }

  /**
   * @param {string} type
   * @param {(detail: any) => any} handler
   * @returns {() => void} unsubscribe
   */
  on(type, handler) {
    if (!this.handlers.has(type)) this.handlers.set(type, new Set());
    this.handlers.get(type)?.add(handler);
    return () => {
      this.handlers.get(type)?.delete(handler);
    };
  }

  /** @param {string} type */
  listens(type) {
    return (this.handlers.get(type)?.size || 0) > 0;
  }

  /**
   * @param {string} type
   * @param {any} [detail]
   * @returns {any[]} what the handlers returned
   */
  emit(type, detail) {
    const results = [];
    for (const handler of [...(this.handlers.get(type) || [])]) {
      try {
        results.push(handler(detail));
      } catch (error) {
        console.error(`"${type}" handler failed`, error);
      }
    }
    return results;
  }
}
