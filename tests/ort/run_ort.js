// Test-only ONNX Runtime runner: node run_ort.js MODEL OUT_DIR NAME=IN.npy ...
// Runs MODEL on the given .npy inputs with one intra-op thread (deterministic) and writes every
// output as OUT_DIR/<sanitized name>.npy plus OUT_DIR/manifest.json {output name: file name}.
'use strict';

const fs = require('fs');
const path = require('path');
const ort = require(path.join(__dirname, 'node_modules', 'onnxruntime-node'));

// .npy descr <-> ONNX Runtime tensor type and typed array.
const NPY_TYPES = {
  '<f4': ['float32', Float32Array],
  '<f8': ['float64', Float64Array],
  '<i8': ['int64', BigInt64Array],
  '<u8': ['uint64', BigUint64Array],
  '<i4': ['int32', Int32Array],
  '<u4': ['uint32', Uint32Array],
  '<i2': ['int16', Int16Array],
  '<u2': ['uint16', Uint16Array],
  '|i1': ['int8', Int8Array],
  '|u1': ['uint8', Uint8Array],
  '|b1': ['bool', Uint8Array],
  '<f2': ['float16', Uint16Array],
};
const DESCR_OF_TYPE = {};
for (const [descr, [type]] of Object.entries(NPY_TYPES)) DESCR_OF_TYPE[type] = descr;

function fail(message) {
  process.stderr.write(`run_ort: ${message}\n`);
  process.exit(1);
}

function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.length < 10 || buf.toString('latin1', 0, 6) !== '\x93NUMPY') fail(`${file}: not a .npy file`);
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const headerStart = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', headerStart, headerStart + headerLen);
  const descr = /'descr'\s*:\s*'([^']+)'/.exec(header);
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header);
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(header);
  if (!descr || !fortran || !shape) fail(`${file}: malformed .npy header`);
  if (fortran[1] === 'True') fail(`${file}: Fortran-order arrays are not supported`);
  const entry = NPY_TYPES[descr[1]];
  if (!entry) fail(`${file}: unsupported dtype ${descr[1]}`);
  const dims = shape[1].split(',').map((s) => s.trim()).filter((s) => s.length > 0).map(Number);
  const count = dims.reduce((a, b) => a * b, 1);
  const dataStart = headerStart + headerLen;
  const [type, ArrayType] = entry;
  const byteLength = count * ArrayType.BYTES_PER_ELEMENT;
  if (buf.length - dataStart < byteLength) fail(`${file}: holds fewer bytes than shape (${dims}) needs`);
  // Copy into a fresh, aligned buffer: the data offset in the file need not be aligned.
  const bytes = new Uint8Array(byteLength);
  buf.copy(bytes, 0, dataStart, dataStart + byteLength);
  // ONNX Runtime takes bool tensors as one byte per element, 0 or 1, like .npy's |b1.
  return new ort.Tensor(type, new ArrayType(bytes.buffer), dims);
}

function writeNpy(file, tensor) {
  const descr = DESCR_OF_TYPE[tensor.type];
  if (!descr) fail(`output type ${tensor.type} cannot be written as .npy`);
  const dims = tensor.dims;
  const shapeText = dims.length === 1 ? `(${dims[0]},)` : `(${dims.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const unpadded = 10 + header.length + 1;
  header += ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  const prefix = Buffer.alloc(10);
  prefix.write('\x93NUMPY', 0, 'latin1');
  prefix[6] = 1;
  prefix[7] = 0;
  prefix.writeUInt16LE(header.length, 8);
  let data = tensor.data;
  if (tensor.type === 'bool') data = Uint8Array.from(data, (v) => (v ? 1 : 0));
  const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  fs.writeFileSync(file, Buffer.concat([prefix, Buffer.from(header, 'latin1'), body]));
}

function sanitize(name) {
  return name.replace(/[^A-Za-z0-9._-]/g, '_');
}

async function main() {
  const args = process.argv.slice(2);
  if (args.length < 2) fail('usage: node run_ort.js MODEL OUT_DIR NAME=IN.npy ...');
  const [model, outDir, ...inputArgs] = args;
  const feeds = {};
  for (const arg of inputArgs) {
    const eq = arg.indexOf('=');
    if (eq <= 0) fail(`input '${arg}' is not NAME=FILE.npy`);
    feeds[arg.slice(0, eq)] = readNpy(arg.slice(eq + 1));
  }
  let session;
  try {
    session = await ort.InferenceSession.create(model, {
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      // QALIGN_ORT_OPTIMIZATION=disabled|basic|extended|all (default all): 'disabled' runs a QDQ
      // model as written (DQ -> float op -> Q) instead of ORT's fused integer kernels.
      graphOptimizationLevel: process.env.QALIGN_ORT_OPTIMIZATION || 'all',
    });
  } catch (e) {
    fail(`${model}: ONNX Runtime cannot load the model: ${String(e.message || e).split('\n')[0]}`);
  }
  let results;
  try {
    results = await session.run(feeds);
  } catch (e) {
    fail(`${model}: ONNX Runtime run failed: ${String(e.message || e).split('\n')[0]}`);
  }
  fs.mkdirSync(outDir, { recursive: true });
  const manifest = {};
  const used = new Set();
  for (const name of session.outputNames) {
    let file = sanitize(name) + '.npy';
    for (let k = 1; used.has(file); ++k) file = `${sanitize(name)}_${k}.npy`;
    used.add(file);
    writeNpy(path.join(outDir, file), results[name]);
    manifest[name] = file;
  }
  fs.writeFileSync(path.join(outDir, 'manifest.json'), JSON.stringify(manifest, null, 1) + '\n');
}

main().catch((e) => fail(String(e && e.stack ? e.stack : e).split('\n')[0]));
