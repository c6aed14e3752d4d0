/**
 * How many onnxruntime sessions this process holds now (created and not yet released), in
 * the main thread and in session workers together. What a load/unload cycle must bring back to
 * where it was (test/integration/load-cycles-memory.test.ts); `/v2/models/stats` does not show it.
 */
let live = 0;

export const liveSessions = {
  created(): void {
    live++;
  },
  released(): void {
    live--;
  },
  /** Sessions created and not released. */
  get count(): number {
    return live;
  },
};
