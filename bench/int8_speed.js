// FP32 against INT8 exports in ONNX Runtime (onnxruntime-node from tests/ort): speed and accuracy.
//
//   node bench/int8_speed.js --fp32 MODEL --int8 LABEL=MODEL [--int8 ...] --images DIR
//        [--mean a,b,c] [--std a,b,c] [--runs N] [--threads T] [--eval K]
//
// Speed: every model gets one warm-up run, then N rounds; each round runs every model once on the
// same image, starting with a different model each round, so load from other processes hits all
// models alike. Intra-op threads do not spin between runs (allow_spinning 0), for every model. Prints the median ms of each and FP32 median / INT8 median (> 1: INT8 is faster).
// Accuracy: on the last K images of DIR (those `qalign quantize --holdout K` leaves out) (PNG, 8-bit RGB or gray, already the model's input size),
// each INT8 model's output against the FP32 model's (both with graph optimizations on, as users
// run them; also the INT8 model with optimizations off: ORT's DQ -> float op -> Q run of the same
// file), summed over the images: SNR = 10 log10(sum ref^2 / sum (ref - x)^2) and cosine; for a
// model whose last axis is a class axis (rec's CTC output, cls) also the share of positions whose
// argmax matches FP32's.
'use strict';
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');

const ortDir = process.env.QALIGN_ORT_DIR || path.join(__dirname, '..', 'tests', 'ort');
const ort = require(path.join(ortDir, 'node_modules', 'onnxruntime-node'));

function fail(message) {
  process.stderr.write(`int8_speed: ${message}\n`);
  process.exit(1);
}

// PNG: 8-bit, non-interlaced, gray / RGB / RGBA; returns {width, height, channels, pixels}.
function readPng(file) {
  const buf = fs.readFileSync(file);
  if (buf.readUInt32BE(0) !== 0x89504e47) fail(`${file}: not a PNG file`);
  let pos = 8;
  let width = 0, height = 0, depth = 0, colorType = 0, interlace = 0;
  const idat = [];
  while (pos < buf.length) {
    const len = buf.readUInt32BE(pos);
    const type = buf.toString('latin1', pos + 4, pos + 8);
    const data = buf.subarray(pos + 8, pos + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      depth = data[8];
      colorType = data[9];
      interlace = data[12];
    } else if (type === 'IDAT') {
      idat.push(data);
    }
    pos += 12 + len;
  }
  const channels = { 0: 1, 2: 3, 6: 4 }[colorType];
  if (depth !== 8 || !channels || interlace !== 0) fail(`${file}: only 8-bit non-interlaced gray/RGB/RGBA PNG`);
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const pixels = Buffer.alloc(height * stride);
  for (let y = 0; y < height; ++y) {
    const filter = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; ++x) {
      const a = x >= channels ? pixels[y * stride + x - channels] : 0;
      const b = y > 0 ? pixels[(y - 1) * stride + x] : 0;
      const c = x >= channels && y > 0 ? pixels[(y - 1) * stride + x - channels] : 0;
      let predictor = 0;
      if (filter === 1) predictor = a;
      else if (filter === 2) predictor = b;
      else if (filter === 3) predictor = (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
        predictor = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      pixels[y * stride + x] = (line[x] + predictor) & 0xff;
    }
  }
  return { width, height, channels, pixels };
}

// NCHW float input: (pixel / 255 - mean[c]) / std[c], RGB order, 3 channels.
function toInput(img, mean, std) {
  const { width, height, channels, pixels } = img;
  const plane = width * height;
  const data = new Float32Array(3 * plane);
  for (let i = 0; i < plane; ++i) {
    for (let c = 0; c < 3; ++c) {
      const v = pixels[i * channels + (channels >= 3 ? c : 0)] / 255;
      data[c * plane + i] = (v - mean[c]) / std[c];
    }
  }
  return new ort.Tensor('float32', data, [1, 3, height, width]);
}

function parseArgs(argv) {
  const args = { int8: [], runs: 15, threads: 2, eval: 4, mean: [0, 0, 0], std: [1, 1, 1] };
  const triple = (text) => {
    const v = text.split(',').map(Number);
    return v.length === 1 ? [v[0], v[0], v[0]] : v;
  };
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    const next = () => (i + 1 < argv.length ? argv[++i] : fail(`${a} needs a value`));
    if (a === '--fp32') args.fp32 = next();
    else if (a === '--int8') {
      const spec = next();
      const eq = spec.indexOf('=');
      if (eq <= 0) fail(`--int8 ${spec}: expected LABEL=MODEL`);
      args.int8.push({ label: spec.slice(0, eq), file: spec.slice(eq + 1) });
    } else if (a === '--images') args.images = next();
    else if (a === '--mean') args.mean = triple(next());
    else if (a === '--std') args.std = triple(next());
    else if (a === '--runs') args.runs = Number(next());
    else if (a === '--threads') args.threads = Number(next());
    else if (a === '--eval') args.eval = Number(next());
    else fail(`unknown argument ${a}`);
  }
  if (!args.fp32 || !args.images) fail('usage: int8_speed.js --fp32 MODEL --int8 LABEL=MODEL ... --images DIR');
  return args;
}

async function open(file, threads, level) {
  try {
    return await ort.InferenceSession.create(file, {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: level,
      // Each session has its own intra-op pool; spinning workers of the session that just ran
      // would take the cores from the next one in the alternation.
      extra: { session: { intra_op: { allow_spinning: '0' } } },
    });
  } catch (e) {
    fail(`${file}: ONNX Runtime cannot load the model: ${String(e.message || e).split('\n')[0]}`);
  }
}

async function run(session, input) {
  const results = await session.run({ [session.inputNames[0]]: input });
  return results[session.outputNames[0]];
}

// Accumulates one output's agreement with the reference over several images.
class Agreement {
  constructor() {
    Object.assign(this, { ref2: 0, err2: 0, dot: 0, x2: 0, positions: 0, argmaxSame: 0 });
  }
  add(ref, x) {
    const r = ref.data, v = x.data;
    if (r.length !== v.length) fail(`output sizes differ: ${r.length} vs ${v.length}`);
    for (let i = 0; i < r.length; ++i) {
      const d = r[i] - v[i];
      this.ref2 += r[i] * r[i];
      this.err2 += d * d;
      this.dot += r[i] * v[i];
      this.x2 += v[i] * v[i];
    }
    // Argmax over the last axis when it is a class axis (more than one class, fewer than the
    // elements): rec's per-column characters, cls's label.
    const classes = ref.dims[ref.dims.length - 1];
    if (classes > 1 && classes < r.length + 1 && ref.dims.length >= 2 && ref.dims[1] !== 1) {
      for (let p = 0; p < r.length / classes; ++p) {
        let br = 0, bv = 0;
        for (let c = 1; c < classes; ++c) {
          if (r[p * classes + c] > r[p * classes + br]) br = c;
          if (v[p * classes + c] > v[p * classes + bv]) bv = c;
        }
        this.positions += 1;
        this.argmaxSame += br === bv ? 1 : 0;
      }
    }
  }
  text() {
    const snr = this.err2 > 0 ? 10 * Math.log10(this.ref2 / this.err2) : Infinity;
    const cos = this.dot / Math.sqrt(this.ref2 * this.x2);
    let s = `SNR ${snr.toFixed(2)} dB, cosine ${cos.toFixed(5)}`;
    if (this.positions > 0) s += `, argmax same ${(100 * this.argmaxSame / this.positions).toFixed(2)}%`;
    return s;
  }
}

function median(values) {
  const s = [...values].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const files = fs.readdirSync(args.images).filter((f) => f.endsWith('.png')).sort();
  if (files.length === 0) fail(`${args.images}: no .png images`);
  const inputs = files.slice(-Math.max(1, args.eval))
    .map((f) => toInput(readPng(path.join(args.images, f)), args.mean, args.std));

  const models = [{ label: 'fp32', file: args.fp32 }, ...args.int8];
  for (const m of models) m.session = await open(m.file, args.threads, 'all');

  // Accuracy first (it also warms every session up).
  const refs = [];
  for (const input of inputs) refs.push(await run(models[0].session, input));
  for (const m of models.slice(1)) {
    const on = new Agreement();
    const off = new Agreement();
    const unfused = await open(m.file, args.threads, 'disabled');
    for (let i = 0; i < inputs.length; ++i) {
      on.add(refs[i], await run(m.session, inputs[i]));
      off.add(refs[i], await run(unfused, inputs[i]));
    }
    await unfused.release();
    console.log(`accuracy ${m.label} vs fp32 on ${inputs.length} images: optimizations on: ${on.text()}; off: ${off.text()}`);
  }

  // Speed: alternate the models run by run.
  for (const m of models) m.times = [];
  for (let r = 0; r < args.runs; ++r) {
    for (let k = 0; k < models.length; ++k) {
      const m = models[(r + k) % models.length];
      const start = process.hrtime.bigint();
      await run(m.session, inputs[0]);
      m.times.push(Number(process.hrtime.bigint() - start) / 1e6);
    }
  }
  const fp32 = median(models[0].times);
  for (const m of models) {
    const ms = median(m.times);
    console.log(`speed ${m.label}: median ${ms.toFixed(1)} ms (min ${Math.min(...m.times).toFixed(1)}) over ${m.times.length} runs, fp32/this ${(fp32 / ms).toFixed(2)}x`);
  }
  console.log(`threads ${args.threads}, ${args.runs} alternating rounds after warm-up`);
}

main().catch((e) => fail(String(e && e.stack ? e.stack : e).split('\n')[0]));
