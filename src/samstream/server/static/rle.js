// COCO RLE for the page: decoding pycocotools' compact "counts" strings into masks.
//
// A COCO RLE {size: [H, W], counts: str} lists run lengths over the mask read column by
// column, the first run counting background. The string packs each run as a little-endian
// sequence of 5-bit groups, one character (code 48 + group) per group, bit 0x20 meaning
// "another group follows"; the last group's 0x10 bit is the sign. From the third run on,
// the value stored is the difference to the run two places earlier.
"use strict";

const SamRle = (() => {
  function runLengths(counts) {
    const runs = [];
    let i = 0;
    while (i < counts.length) {
      let value = 0, shift = 0, more = true, group = 0;
      while (more) {
        group = counts.charCodeAt(i) - 48;
        value |= (group & 0x1f) << shift;
        more = (group & 0x20) !== 0;
        shift += 5;
        i += 1;
        if (!more && (group & 0x10)) value |= -1 << shift;
      }
      if (runs.length > 2) value += runs[runs.length - 2];
      runs.push(value);
    }
    return runs;
  }

  // -> Uint8Array of H*W in row-major order (1 = mask)
  function decode(rle) {
    const [h, w] = rle.size;
    const out = new Uint8Array(h * w);
    const runs = runLengths(rle.counts);
    let pos = 0, on = false;
    for (const run of runs) {
      if (on) {
        for (let k = pos; k < pos + run; k++) {
          const x = Math.floor(k / h), y = k - x * h; // column-major position -> (x, y)
          out[y * w + x] = 1;
        }
      }
      pos += run;
      on = !on;
    }
    return out;
  }

  // Uint8Array H*W row-major -> COCO RLE (used to send a chosen proposal back as a mask)
  function encode(mask, h, w) {
    const runs = [];
    let current = 0, run = 0;
    for (let x = 0; x < w; x++) {
      for (let y = 0; y < h; y++) {
        const v = mask[y * w + x] ? 1 : 0;
        if (v !== current) { runs.push(run); run = 0; current = v; }
        run += 1;
      }
    }
    runs.push(run);
    let s = "";
    for (let i = 0; i < runs.length; i++) {
      let value = runs[i];
      if (i > 2) value -= runs[i - 2];
      let more = true;
      while (more) {
        let group = value & 0x1f;
        value >>= 5;
        more = (group & 0x10) ? value !== -1 : value !== 0;
        if (more) group |= 0x20;
        s += String.fromCharCode(group + 48);
      }
    }
    return { size: [h, w], counts: s };
  }

  return { decode, encode, runLengths };
})();
