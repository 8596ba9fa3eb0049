// Times ONNX Runtime (onnxruntime-node from tests/ort) on one model, for bench/runtime_compare.sh.
//
//   node bench/ort_time.js MODEL --input NAME=FILE.npy [--repeat N] [--threads T] [--profile DIR]
//     runs one warm-up and N timed runs; prints "ort_ms_per_iter <median>" (and min / mean).
//   node bench/ort_time.js --make-npy FILE --shape 1,3,640,640 [--seed S]
//     writes a seeded uniform [0, 1) float32 .npy input, so qalign and ORT see the same data.
'use strict';
const fs = require('fs');
const path = require('path');

const ortDir = process.env.QALIGN_ORT_DIR || path.join(__dirname, '..', 'tests', 'ort');
const ort = require(path.join(ortDir, 'node_modules', 'onnxruntime-node'));

function fail(message) {
  process.stderr.write(`ort_time: ${message}\n`);
  process.exit(1);
}

function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.readUInt8(0) !== 0x93 || buf.toString('latin1', 1, 6) !== 'NUMPY') fail(`${file}: not a .npy file`);
  const major = buf.readUInt8(6);
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', start, start + headerLen);
  if (!/'descr':\s*'<f4'/.test(header)) fail(`${file}: only little-endian float32 is supported`);
  if (/'fortran_order':\s*True/.test(header)) fail(`${file}: fortran_order is not supported`);
  const shapeText = header.match(/'shape':\s*\(([^)]*)\)/)[1];
  const dims = shapeText.split(',').map((s) => s.trim()).filter((s) => s.length).map(Number);
  const offset = start + headerLen;
  const count = dims.reduce((a, b) => a * b, 1);
  const data = new Float32Array(count);
  for (let i = 0; i < count; ++i) data[i] = buf.readFloatLE(offset + 4 * i);
  return { dims, data };
}

function writeNpy(file, dims, data) {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${dims.join(', ')}${dims.length === 1 ? ',' : ''}), }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const head = Buffer.alloc(10);
  head.writeUInt8(0x93, 0);
  head.write('NUMPY', 1, 'latin1');
  head.writeUInt8(1, 6);
  head.writeUInt8(0, 7);
  head.writeUInt16LE(header.length, 8);
  fs.writeFileSync(file, Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.from(data.buffer)]));
}

// Mulberry32: a small seeded generator, so the input is the same on every machine.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function parseArgs(argv) {
  const args = { inputs: [], repeat: 20, threads: require('os').cpus().length, seed: 1 };
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    const next = () => (i + 1 < argv.length ? argv[++i] : fail(`${a} needs a value`));
    if (a === '--input') args.inputs.push(next());
    else if (a === '--repeat') args.repeat = Number(next());
    else if (a === '--threads') args.threads = Number(next());
    else if (a === '--profile') args.profile = next();
    else if (a === '--make-npy') args.makeNpy = next();
    else if (a === '--shape') args.shape = next().split(',').map(Number);
    else if (a === '--seed') args.seed = Number(next());
    else if (a.startsWith('--')) fail(`unknown flag ${a}`);
    else args.model = a;
  }
  return args;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.makeNpy) {
    if (!args.shape) fail('--make-npy needs --shape');
    const count = args.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(count);
    const next = rng(args.seed);
    for (let i = 0; i < count; ++i) data[i] = next();
    writeNpy(args.makeNpy, args.shape, data);
    return;
  }
  if (!args.model) fail('usage: ort_time.js MODEL --input NAME=FILE.npy [--repeat N] [--threads T]');
  const options = {
    intraOpNumThreads: args.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  };
  if (args.profile) {
    options.enableProfiling = true;
    options.profileFilePrefix = path.join(args.profile, 'ort_profile');
  }
  const session = await ort.InferenceSession.create(args.model, options);
  const feeds = {};
  for (const spec of args.inputs) {
    const eq = spec.indexOf('=');
    if (eq < 0) fail(`--input ${spec}: expected NAME=FILE.npy`);
    const { dims, data } = readNpy(spec.slice(eq + 1));
    feeds[spec.slice(0, eq)] = new ort.Tensor('float32', data, dims);
  }
  for (const name of session.inputNames) {
    if (!(name in feeds)) fail(`${args.model}: no --input for model input '${name}'`);
  }
  await session.run(feeds);  // warm-up
  const times = [];
  for (let i = 0; i < args.repeat; ++i) {
    const start = process.hrtime.bigint();
    await session.run(feeds);
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  if (args.profile) session.endProfiling();
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)];
  const mean = times.reduce((a, b) => a + b, 0) / times.length;
  console.log(`ort_ms_per_iter ${median.toFixed(3)} min ${times[0].toFixed(3)} mean ${mean.toFixed(3)} threads ${args.threads} runs ${times.length}`);
}

main().catch((e) => fail(e.message));
