// Renders the labelled evaluation data of the accuracy benchmark with ImageMagick and DejaVu fonts,
// seeded: the same (kind, count, seed) gives the same images and labels on every run.
//   node render.js OUT_DIR KIND COUNT SEED DICT
// KIND rec: text lines (words, numbers, prices, dates, times, codes) cropped tight with a margin,
//           labels = the text; cls: shorter lines, every second one turned by 180 degrees,
//           labels = 0 or 180; det: 640x640 pages of 3-9 lines, labels = the lines joined by ' | '.
// Writes OUT_DIR/<kind>_NNNN.png and OUT_DIR/labels.tsv (file, tab, label). The folder is built
// under another name and renamed, so an existing OUT_DIR with labels.tsv is complete and reused.
// Every label character is checked against rec's dictionary (DICT, ppocr_keys_v1.txt).
// The calibration images (scripts/make_calib_images.sh) use another generator, vocabulary and
// seed, so the benchmark never scores a model on its calibration data.
'use strict';

const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');
const { loadDictionary } = require('./metrics');

const CONVERT = '/usr/bin/convert';  // Debian's ImageMagick, not any wrapper earlier on PATH
const FONT_DIR = '/usr/share/fonts/truetype/dejavu';
const FONTS = ['DejaVuSans.ttf', 'DejaVuSerif.ttf', 'DejaVuSansMono.ttf', 'DejaVuSans-Bold.ttf',
  'DejaVuSans-Oblique.ttf', 'DejaVuSerif-Italic.ttf', 'DejaVuSansCondensed.ttf',
  'DejaVuSerif-Bold.ttf', 'DejaVuSansMono-Bold.ttf'];
const WORDS = ['market', 'coffee', 'library', 'monday', 'friday', 'delivery', 'discount', 'balance',
  'account', 'room', 'floor', 'open', 'closed', 'daily', 'menu', 'bread', 'milk', 'apple',
  'garden', 'river', 'hotel', 'museum', 'office', 'service', 'contact', 'phone', 'email', 'note',
  'small', 'large', 'fresh', 'summer', 'winter', 'parking', 'exit', 'entrance', 'pharmacy',
  'bakery', 'weight', 'net', 'best', 'before', 'batch', 'serial', 'model', 'power', 'input',
  'output', 'warning', 'caution', 'size', 'color', 'blue', 'green', 'black', 'white', 'card',
  'cash', 'change', 'member', 'points', 'welcome', 'check', 'table', 'guest', 'server'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function fail(message) {
  process.stderr.write(`render: ${message}\n`);
  process.exit(1);
}

// mulberry32: a small seeded generator, uniform in [0, 1). The seed is mixed first (murmur3's
// finaliser) so that nearby seeds start far apart.
function makeRandom(seed) {
  let state = seed >>> 0;
  state = Math.imul(state ^ (state >>> 16), 0x85ebca6b) >>> 0;
  state = Math.imul(state ^ (state >>> 13), 0xc2b2ae35) >>> 0;
  state = (state ^ (state >>> 16)) >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pad(n, width) {
  return String(n).padStart(width, '0');
}

// One token of text: a word (lower, Capitalised or UPPER case), a number, a price, a date, a time or
// a code. No '%' followed by a letter and no backslash: ImageMagick's label: would expand them. No
// '¥': the dictionary has both it and the full-width '￥', which rec reads for it.
function token(random) {
  const pick = (list) => list[Math.floor(random() * list.length)];
  const int = (lo, hi) => lo + Math.floor(random() * (hi - lo + 1));
  const kind = random();
  if (kind < 0.45) {
    const word = pick(WORDS);
    const style = random();
    if (style < 0.5) return word;
    if (style < 0.85) return word[0].toUpperCase() + word.slice(1);
    return word.toUpperCase();
  }
  if (kind < 0.55) return String(int(0, 99999));
  if (kind < 0.7) {
    const amount = `${int(0, 999)}.${pad(int(0, 99), 2)}`;
    return pick([`$${amount}`, `${amount}`, `EUR ${amount}`, `${int(1, 99)}%`]);
  }
  if (kind < 0.82) {
    const y = int(1990, 2035);
    const m = int(1, 12);
    const d = int(1, 28);
    return pick([`${y}-${pad(m, 2)}-${pad(d, 2)}`, `${pad(d, 2)}/${pad(m, 2)}/${y}`,
      `${MONTHS[m - 1]} ${d}, ${y}`]);
  }
  if (kind < 0.9) return `${pad(int(0, 23), 2)}:${pad(int(0, 59), 2)}`;
  const letters = 'ABCDEFGHJKLMNPRSTUVWXYZ';
  const code = letters[int(0, letters.length - 1)] + letters[int(0, letters.length - 1)];
  return pick([`${code}-${int(100, 9999)}`, `No.${int(1, 999)}`, `#${int(10, 9999)}`]);
}

// A line of 1-4 tokens of at most maxChars characters.
function textLine(random, maxChars) {
  for (;;) {
    const count = 1 + Math.floor(random() * 4);
    const tokens = [];
    for (let i = 0; i < count; ++i) tokens.push(token(random));
    const line = tokens.join(' ');
    if (line.length <= maxChars) return line;
  }
}

// Background and ink: mostly dark ink on a light background, one in eight the other way round.
function colours(random) {
  const channel = (lo, span) => lo + Math.floor(random() * span);
  const light = `rgb(${channel(185, 71)},${channel(185, 71)},${channel(175, 81)})`;
  const dark = `rgb(${channel(0, 90)},${channel(0, 90)},${channel(0, 110)})`;
  return random() < 0.125 ? { background: dark, ink: light } : { background: light, ink: dark };
}

function font(random) {
  return path.join(FONT_DIR, FONTS[Math.floor(random() * FONTS.length)]);
}

// ImageMagick arguments of one sample and its label.
function sample(kind, index, random) {
  const { background, ink } = colours(random);
  if (kind === 'det') {
    const args = ['-size', '640x640', `xc:${background}`];
    const count = 3 + Math.floor(random() * 7);
    const lines = [];
    for (let l = 0; l < count; ++l) {
      const line = textLine(random, 28);
      lines.push(line);
      const pointsize = 14 + Math.floor(random() * 26);
      const x = 8 + Math.floor(random() * 200);
      const y = 30 + Math.floor((l * 600) / count + random() * 20);
      args.push('-font', font(random), '-pointsize', String(pointsize), '-fill', ink,
        '-annotate', `+${x}+${y}`, line);
    }
    return { args, label: lines.join(' | ') };
  }
  const line = textLine(random, kind === 'rec' ? 20 : 12);
  const args = ['-background', background, '-fill', ink, '-font', font(random),
    '-pointsize', String(20 + Math.floor(random() * 21)), `label:${line}`,
    '-bordercolor', background,
    '-border', `${4 + Math.floor(random() * 12)}x${2 + Math.floor(random() * 8)}`];
  if (kind === 'rec') return { args, label: line };
  const upsideDown = index % 2 === 1;
  if (upsideDown) args.push('-rotate', '180');
  return { args, label: upsideDown ? '180' : '0' };
}

function main() {
  const [outDir, kind, countText, seedText, dictFile] = process.argv.slice(2);
  if (!dictFile) fail('usage: node render.js OUT_DIR rec|det|cls COUNT SEED DICT');
  if (!['rec', 'det', 'cls'].includes(kind)) fail(`unknown kind '${kind}' (rec, det, cls)`);
  const count = Number(countText);
  const seed = Number(seedText);
  if (!Number.isInteger(count) || count <= 0) fail(`COUNT '${countText}' is not a positive integer`);
  if (!Number.isInteger(seed)) fail(`SEED '${seedText}' is not an integer`);
  if (fs.existsSync(path.join(outDir, 'labels.tsv'))) return;
  if (!fs.existsSync(CONVERT)) fail(`${CONVERT} not found (apt-get install imagemagick)`);
  for (const name of FONTS) {
    const file = path.join(FONT_DIR, name);
    if (!fs.existsSync(file)) fail(`${file} not found (apt-get install fonts-dejavu-core fonts-dejavu-extra)`);
  }
  const dictionary = new Set(loadDictionary(fs.readFileSync(dictFile, 'utf8')).slice(1));

  const partDir = `${outDir}.part-${process.pid}`;
  fs.rmSync(partDir, { recursive: true, force: true });
  fs.mkdirSync(partDir, { recursive: true });
  const rows = [];
  for (let i = 0; i < count; ++i) {
    // One generator per sample, so the first N samples of a larger set are the set of N.
    const random = makeRandom(makeRandom(seed + kind.charCodeAt(0))() * 4294967296 + i);
    const { args, label } = sample(kind, i, random);
    if (kind !== 'cls') {
      for (const ch of label) {
        if (!dictionary.has(ch)) fail(`label '${label}' has '${ch}', which is not in ${dictFile}`);
      }
    }
    const file = `${kind}_${pad(i, 4)}.png`;
    // No date/time chunks: the same seed gives byte-identical files.
    execFileSync(CONVERT, [...args, '-type', 'TrueColor', '-define', 'png:exclude-chunks=date,time',
      `PNG24:${path.join(partDir, file)}`]);
    rows.push(`${file}\t${label}\n`);
  }
  fs.writeFileSync(path.join(partDir, 'labels.tsv'), rows.join(''));
  try {
    fs.renameSync(partDir, outDir);
  } catch (e) {
    // Another run finished the same folder first: its files are the same.
    fs.rmSync(partDir, { recursive: true, force: true });
    if (!fs.existsSync(path.join(outDir, 'labels.tsv'))) fail(`cannot create ${outDir}: ${e.message}`);
  }
}

main();
