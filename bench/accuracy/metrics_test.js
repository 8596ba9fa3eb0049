// Checks metrics.js on tiny inputs whose answers are known by hand: node metrics_test.js
// (exit 0 when every check holds; the first failing check is printed and exits 1).
'use strict';

const assert = require('assert');
const m = require('./metrics');

const checks = [];
function check(name, body) {
  checks.push([name, body]);
}

check('edit distance', () => {
  assert.strictEqual(m.editDistance('', ''), 0);
  assert.strictEqual(m.editDistance('abc', ''), 3);
  assert.strictEqual(m.editDistance('', 'ab'), 2);
  assert.strictEqual(m.editDistance('kitten', 'sitting'), 3);
  assert.strictEqual(m.editDistance('flaw', 'lawn'), 2);
  assert.strictEqual(m.editDistance('12:30', '12:30'), 0);
  // Code points, not UTF-16 units: one astral character is one edit.
  assert.strictEqual(m.editDistance('a\u{20000}b', 'ab'), 1);
  assert.strictEqual(m.editDistance('中文', '中'), 1);
});

check('recognition accuracy', () => {
  const r = m.recognitionAccuracy(['abcd', 'xy', 'hello'], ['abcd', 'xyz', 'hallo']);
  // 0 + 1 + 1 edits over 4 + 3 + 5 characters; one line of three exact.
  assert.ok(Math.abs(r.charAccuracy - (1 - 2 / 12)) < 1e-12);
  assert.ok(Math.abs(r.lineAccuracy - 1 / 3) < 1e-12);
});

check('dictionary classes', () => {
  const classes = m.loadDictionary('a\nb\r\nc\n');
  assert.deepStrictEqual(classes, ['', 'a', 'b', 'c', ' ']);
  assert.deepStrictEqual(m.loadDictionary('a\nb'), ['', 'a', 'b', ' ']);
});

check('CTC greedy decode', () => {
  const classes = ['', 'a', 'b', ' '];
  // Steps' argmax: a a blank a b b space blank -> "aab " (repeats merged, a blank splits them).
  const steps = [1, 1, 0, 1, 2, 2, 3, 0];
  const scores = new Float32Array(steps.length * classes.length).fill(-1);
  steps.forEach((k, t) => { scores[t * classes.length + k] = 2; });
  assert.strictEqual(m.ctcGreedyDecode(scores, steps.length, classes.length, classes), 'aab ');
  // All blank: nothing.
  const blank = new Float32Array(3 * classes.length).fill(0);
  for (let t = 0; t < 3; ++t) blank[t * classes.length] = 1;
  assert.strictEqual(m.ctcGreedyDecode(blank, 3, classes.length, classes), '');
  // Ties go to the first class (argmax of numpy / PaddleOCR).
  assert.strictEqual(m.argmax([0.5, 0.5, 0.1], 0, 3), 0);
  assert.strictEqual(m.argmax([9, 0.1, 0.7, 0.7], 1, 3), 1);
});

check('connected regions', () => {
  // 6x4 map: a 2x2 block (4 px), a lone pixel, and a 4-pixel hook.
  const w = 6;
  const h = 4;
  const map = [
    1, 1, 0, 0, 0, 1,
    1, 1, 0, 1, 0, 0,
    0, 0, 1, 1, 0, 0,
    0, 0, 0, 1, 0, 0,
  ];
  const prob = Float32Array.from(map, (v) => (v ? 0.9 : 0.1));
  const all = m.textRegions(prob, w, h, 0.3, 1);
  // The block touches the L only diagonally (pixel (1,1) and (2,2)): 4-connectivity splits them.
  assert.deepStrictEqual(all.regions, [4, 1, 4]);
  assert.strictEqual(all.labels[0], 1);
  assert.strictEqual(all.labels[5], 2);
  assert.strictEqual(all.labels[9], 3);
  assert.strictEqual(all.labels[2], 0);
  // Regions under 2 pixels are dropped; the threshold is strict (> 0.3).
  const big = m.textRegions(prob, w, h, 0.3, 2);
  assert.deepStrictEqual(big.regions, [4, 4]);
  assert.strictEqual(big.labels[5], 0);
  const none = m.textRegions(map.map((v) => (v ? 0.3 : 0)), w, h, 0.3, 1);
  assert.deepStrictEqual(none.regions, []);
});

check('region matching', () => {
  const w = 10;
  const h = 1;
  const regions = (row) => m.textRegions(Float32Array.from(row), w, h, 0.5, 1);
  const a = regions([1, 1, 1, 1, 0, 0, 1, 1, 0, 0]);  // [0,4) and [6,8)
  const b = regions([0, 1, 1, 1, 0, 0, 0, 1, 0, 1]);  // [1,4), {7} and {9}
  const r = m.matchRegions(a, b, 0.5);
  // [0,4) vs [1,4): IoU 3/4 matches; [6,8) vs {7}: IoU 1/2 matches; {9} matches nothing.
  assert.strictEqual(r.matchedA, 2);
  assert.strictEqual(r.matchedB, 2);
  assert.ok(Math.abs(r.precision - 2 / 3) < 1e-12);
  assert.strictEqual(r.recall, 1);
  assert.ok(Math.abs(r.f1 - 0.8) < 1e-12);
  // Mask IoU: 4 pixels in both, 7 in either.
  assert.ok(Math.abs(r.maskIou - 4 / 7) < 1e-12);
  // Just under the IoU threshold: no match.
  const strict = m.matchRegions(a, b, 0.76);
  assert.strictEqual(strict.matchedA, 0);
  assert.strictEqual(strict.f1, 0);
  // Two empty maps agree; an empty candidate against a full reference scores 0.
  const empty = regions(new Array(w).fill(0));
  assert.strictEqual(m.matchRegions(empty, empty, 0.5).f1, 1);
  assert.strictEqual(m.matchRegions(a, empty, 0.5).f1, 0);
});

check('bilinear resize and line input', () => {
  // 2x1 grey image [0, 255] to 4x1: half-pixel centres give 0, 63.75, 191.25, 255.
  const out = m.resizeBilinear(Uint8Array.from([0, 255]), 2, 1, 1, 4, 1);
  assert.deepStrictEqual(Array.from(out), [0, 63.75, 191.25, 255]);
  // A 4x2 white image to height 4 keeps its aspect ratio (width 8 of 12), normalized to 1, and
  // the rest of the row is padding 0; channels stay apart.
  const pixels = new Uint8Array(4 * 2 * 3);
  for (let i = 0; i < 8; ++i) pixels.set([255, 0, 255], i * 3);
  const input = m.lineInput(pixels, 4, 2, 3, 4, 12);
  assert.strictEqual(input.length, 3 * 4 * 12);
  assert.strictEqual(input[7], 1);       // channel 0, row 0, x 7
  assert.strictEqual(input[8], 0);       // padding
  assert.strictEqual(input[48 + 3], -1); // channel 1 is black: (0 - 0.5) / 0.5
  // Too wide: squeezed to the full width.
  assert.strictEqual(m.lineInput(pixels, 4, 2, 3, 4, 6)[5], 1);
  // det: (x / 255 - mean) / std per channel.
  const page = m.pageInput(Uint8Array.from([255, 0, 51]), 1, 1, 3);
  assert.ok(Math.abs(page[0] - (1 - 0.485) / 0.229) < 1e-6);
  assert.ok(Math.abs(page[1] - (0 - 0.456) / 0.224) < 1e-6);
  assert.ok(Math.abs(page[2] - (0.2 - 0.406) / 0.225) < 1e-6);
});

let failed = 0;
for (const [name, body] of checks) {
  try {
    body();
    console.log(`ok   ${name}`);
  } catch (e) {
    ++failed;
    console.log(`FAIL ${name}: ${e.message}`);
  }
}
if (failed > 0) process.exit(1);
console.log(`metrics_test: ${checks.length} checks passed`);
