// Preloaded with `node --require` by tests that must change the process's surroundings before
// it does anything (close the read end of its stderr pipe): blocks until a byte arrives on
// stdin, so the test decides when the program starts, with no timing.
const { readSync } = require('node:fs');
const byte = Buffer.alloc(1);
for (;;) {
  try {
    if (readSync(0, byte, 0, 1, null) >= 0) break;
  } catch (err) {
    if (err.code !== 'EAGAIN') throw err;
  }
}
