// Task accuracy of PP-OCR models, FP32 and quantized, in ONNX Runtime (tests/ort/node_modules).
//
//   node ocr_accuracy.js eval --kind rec|det|cls --data DIR --fp32 MODEL [--dict KEYS]
//        [--threads N] [--out RESULTS.jsonl] [--run KEY=VALUE,... MODEL]...
//   node ocr_accuracy.js table RESULTS.jsonl [--floors FLOORS.json]
//
// eval reads DIR/labels.tsv (from render.js), runs the FP32 model and every --run model on each
// sample and appends one JSON line per model to RESULTS.jsonl (and prints it). A --run's keys are
// copied into its line; `opt` is ONNX Runtime's graph optimization level for it (default disabled:
// a QDQ model then runs as written, DequantizeLinear -> float op -> QuantizeLinear; `all` lets ORT
// fuse it into integer kernels, as a deployment does). FP32 runs with optimizations disabled.
//   rec: a = character accuracy 1 - sum(edit distance) / sum(label length), b = line accuracy
//        (exact matches), both against the labels, after trimming spaces at the ends of the text
//        read (rec often reads the margin of a line as a space); also the lines read as FP32 does,
//        and c = character accuracy with every space removed from both (PaddleOCR's RecMetric
//        does so by default), which shows how much of the loss is lost or extra spaces.
//   det: a = F1 of the model's text regions against FP32's (a region matches at IoU >= 0.5; DB
//        post-processing: probability > 0.3, 4-connected, >= 10 pixels), b = pixel IoU of the masks.
//   cls: a = accuracy against the labels (0 / 180 degrees), b = argmax agreement with FP32.
// table prints every line of RESULTS.jsonl as one markdown table (values in %), and with --floors
// exits 1 when a metric is under its floor or a floor's row failed.
'use strict';

const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');
const metrics = require('./metrics');

const CONVERT = '/usr/bin/convert';
const ORT_PATH = path.join(__dirname, '..', '..', 'tests', 'ort', 'node_modules', 'onnxruntime-node');
const DET_THRESHOLD = 0.3;
const DET_MIN_PIXELS = 10;
const DET_MIN_IOU = 0.5;
const INPUT_SIZE = { rec: [48, 320], cls: [48, 192], det: [640, 640] };  // [H, W]

function fail(message) {
  process.stderr.write(`ocr_accuracy: ${message}\n`);
  process.exit(1);
}

// Decodes an image file to 8-bit BGR (PaddleOCR reads images with OpenCV, which gives BGR, and
// feeds them as they are), through ImageMagick's binary PPM.
function readImageBgr(file) {
  let ppm;
  try {
    ppm = execFileSync(CONVERT, [file, '-alpha', 'off', '-depth', '8', 'ppm:-'],
      { maxBuffer: 64 << 20 });
  } catch (e) {
    fail(`${file}: ImageMagick cannot read it`);
  }
  // Header: "P6" width height maxval, separated by whitespace, then one byte of whitespace.
  let pos = 0;
  const fields = [];
  while (fields.length < 4) {
    while (/\s/.test(String.fromCharCode(ppm[pos]))) ++pos;
    let end = pos;
    while (!/\s/.test(String.fromCharCode(ppm[end]))) ++end;
    fields.push(ppm.toString('latin1', pos, end));
    pos = end;
  }
  ++pos;
  const [magic, w, h, maxval] = fields;
  if (magic !== 'P6' || maxval !== '255') fail(`${file}: ImageMagick gave ${magic} ${maxval}, not P6 255`);
  const width = Number(w);
  const height = Number(h);
  const pixels = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; ++i) {
    pixels[i * 3] = ppm[pos + i * 3 + 2];
    pixels[i * 3 + 1] = ppm[pos + i * 3 + 1];
    pixels[i * 3 + 2] = ppm[pos + i * 3];
  }
  return { pixels, width, height };
}

function readSamples(dir) {
  const file = path.join(dir, 'labels.tsv');
  if (!fs.existsSync(file)) fail(`${file} not found (render the data with render.js)`);
  return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.length > 0).map((l) => {
    const tab = l.indexOf('\t');
    return { file: path.join(dir, l.slice(0, tab)), label: l.slice(tab + 1) };
  });
}

function modelInput(kind, image) {
  const [h, w] = INPUT_SIZE[kind];
  if (kind === 'det') {
    if (image.width !== w || image.height !== h) fail(`det page is ${image.width}x${image.height}, not ${w}x${h}`);
    return metrics.pageInput(image.pixels, w, h, 3);
  }
  return metrics.lineInput(image.pixels, image.width, image.height, 3, h, w);
}

function firstLine(e) {
  return String((e && e.message) || e).split('\n')[0];
}

// Runs one model on every input; returns what each kind's metrics need per sample. Throws an
// Error naming the model when ONNX Runtime cannot load or run it or its output has the wrong shape.
async function predict(ort, kind, model, opt, threads, inputs, classes) {
  let session;
  try {
    session = await ort.InferenceSession.create(model, {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: opt,
    });
  } catch (e) {
    throw new Error(`${model}: ONNX Runtime cannot load it: ${firstLine(e)}`);
  }
  const [h, w] = INPUT_SIZE[kind];
  const out = [];
  for (const data of inputs) {
    const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data, [1, 3, h, w]) };
    let result;
    try {
      result = (await session.run(feeds))[session.outputNames[0]];
    } catch (e) {
      throw new Error(`${model}: ONNX Runtime run failed: ${firstLine(e)}`);
    }
    const dims = result.dims;
    if (kind === 'rec') {
      if (dims.length !== 3 || dims[2] !== classes.length) {
        throw new Error(`${model}: rec output is [${dims}], not [1, T, ${classes.length}] (the dictionary's classes)`);
      }
      out.push(metrics.ctcGreedyDecode(result.data, dims[1], dims[2], classes));
    } else if (kind === 'cls') {
      out.push(metrics.argmax(result.data, 0, result.data.length));
    } else {
      if (result.data.length !== h * w) throw new Error(`${model}: det output is [${dims}], not ${h}x${w}`);
      out.push(metrics.textRegions(result.data, w, h, DET_THRESHOLD, DET_MIN_PIXELS));
    }
  }
  await session.release();
  return out;
}

// The a/b metrics of one model's predictions (see the header), with FP32's as the reference.
function score(kind, predictions, reference, samples) {
  if (kind === 'rec') {
    const labels = samples.map((s) => s.label);
    const acc = metrics.recognitionAccuracy(predictions.map((p) => p.trim()), labels);
    const noSpaces = metrics.recognitionAccuracy(predictions.map((p) => p.replace(/ /g, '')),
      labels.map((l) => l.replace(/ /g, '')));
    const sameAsFp32 = predictions.filter((p, i) => p === reference[i]).length / predictions.length;
    return { a: acc.charAccuracy, b: acc.lineAccuracy, c: noSpaces.charAccuracy, sameAsFp32 };
  }
  if (kind === 'cls') {
    const labels = samples.map((s) => (s.label === '180' ? 1 : 0));
    const correct = predictions.filter((p, i) => p === labels[i]).length;
    const agree = predictions.filter((p, i) => p === reference[i]).length;
    return { a: correct / predictions.length, b: agree / predictions.length };
  }
  // det: region counts and mask pixels summed over the pages, then one F1 and one IoU.
  let matchedA = 0;
  let matchedB = 0;
  let regionsA = 0;
  let regionsB = 0;
  let both = 0;
  let either = 0;
  for (let i = 0; i < predictions.length; ++i) {
    const m = metrics.matchRegions(reference[i], predictions[i], DET_MIN_IOU);
    matchedA += m.matchedA;
    matchedB += m.matchedB;
    regionsA += m.regionsA;
    regionsB += m.regionsB;
    both += m.pixelsBoth;
    either += m.pixelsEither;
  }
  const precision = regionsB === 0 ? 1 : matchedB / regionsB;
  const recall = regionsA === 0 ? 1 : matchedA / regionsA;
  const f1 = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
  return { a: f1, b: either === 0 ? 1 : both / either, regions: regionsB, fp32Regions: regionsA };
}

function parseRun(spec) {
  const info = {};
  for (const pair of spec.split(',')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) fail(`--run '${spec}': '${pair}' is not KEY=VALUE`);
    info[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  info.opt = info.opt || 'disabled';
  if (!['disabled', 'basic', 'extended', 'all'].includes(info.opt)) {
    fail(`--run '${spec}': opt must be disabled, basic, extended or all`);
  }
  return info;
}

async function evaluate(args) {
  const options = { threads: 1, runs: [] };
  for (let i = 0; i < args.length; ++i) {
    const flag = args[i];
    const value = () => {
      if (i + 1 >= args.length) fail(`${flag} needs a value`);
      return args[++i];
    };
    if (flag === '--kind') options.kind = value();
    else if (flag === '--data') options.data = value();
    else if (flag === '--dict') options.dict = value();
    else if (flag === '--fp32') options.fp32 = value();
    else if (flag === '--threads') options.threads = Number(value());
    else if (flag === '--out') options.out = value();
    else if (flag === '--run') options.runs.push({ info: parseRun(value()), model: value() });
    else fail(`unknown argument '${flag}'`);
  }
  const { kind } = options;
  if (!INPUT_SIZE[kind]) fail('--kind must be rec, det or cls');
  if (!options.data || !options.fp32) fail('--data and --fp32 are required');
  if (kind === 'rec' && !options.dict) fail('rec needs --dict (ppocr_keys_v1.txt)');
  if (!(options.threads >= 1)) fail('--threads must be >= 1');
  for (const run of [{ model: options.fp32 }, ...options.runs]) {
    if (!fs.existsSync(run.model)) fail(`${run.model}: no such model`);
  }
  const ort = require(ORT_PATH);
  const classes = kind === 'rec' ? metrics.loadDictionary(fs.readFileSync(options.dict, 'utf8')) : null;
  const samples = readSamples(options.data);
  const inputs = samples.map((s) => modelInput(kind, readImageBgr(s.file)));

  const emit = (line) => {
    const text = JSON.stringify({ kind, samples: samples.length, ...line });
    process.stdout.write(text + '\n');
    if (options.out) fs.appendFileSync(options.out, text + '\n');
  };
  const seconds = (started) => Number(((Date.now() - started) / 1000).toFixed(1));
  let started = Date.now();
  const reference = await predict(ort, kind, options.fp32, 'disabled', options.threads, inputs, classes);
  emit({ target: 'fp32', opt: 'disabled', ...score(kind, reference, reference, samples),
    evalSeconds: seconds(started) });
  // A quantized model ONNX Runtime rejects is a failed row, not the end of the table.
  for (const run of options.runs) {
    started = Date.now();
    try {
      const predictions = await predict(ort, kind, run.model, run.info.opt, options.threads, inputs, classes);
      emit({ ...run.info, ...score(kind, predictions, reference, samples), evalSeconds: seconds(started) });
    } catch (e) {
      process.stderr.write(`ocr_accuracy: ${e.message}\n`);
      emit({ ...run.info, failed: true, error: e.message });
    }
  }
}

const METRIC_NAMES = {
  rec: ['char accuracy', 'line accuracy'],
  det: ['region F1 vs FP32', 'mask IoU vs FP32'],
  cls: ['accuracy', 'agreement with FP32'],
};

function percent(x) {
  return (100 * x).toFixed(2);
}

// One markdown table of every result line; with floors, the list of rows under them.
function table(args) {
  const file = args[0];
  if (!file) fail('usage: node ocr_accuracy.js table RESULTS.jsonl [--floors FLOORS.json]');
  const lines = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l));
  // Each model's rows together, in the order the models came, its FP32 row first.
  const kinds = [...new Set(lines.map((r) => r.kind))];
  const rows = [];
  for (const kind of kinds) {
    rows.push(...lines.filter((r) => r.kind === kind && r.target === 'fp32'));
    rows.push(...lines.filter((r) => r.kind === kind && r.target !== 'fp32'));
  }
  const fp32 = {};
  for (const r of rows) if (r.target === 'fp32') fp32[r.kind] = r;
  console.log('| model | target | technique | ORT opt | metric a | a | a - FP32 (pt) | metric b | b | rec: a without spaces | quantize (s) |');
  console.log('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    if (r.failed) {
      const what = r.error ? 'ONNX Runtime failed' : 'quantize failed';
      console.log(`| ${r.kind} ${r.samples || ''} | ${r.target} | ${r.technique || ''} | ${r.opt} | ${what} | | | | | | ${r.seconds || ''} |`);
      continue;
    }
    const [nameA, nameB] = METRIC_NAMES[r.kind];
    const delta = fp32[r.kind] ? (100 * (r.a - fp32[r.kind].a)).toFixed(2) : '';
    console.log(`| ${r.kind} ${r.samples} | ${r.target} | ${r.target === 'fp32' ? '' : r.technique || 'default'} ` +
      `| ${r.opt} | ${nameA} | ${percent(r.a)} | ${delta} | ${nameB} | ${percent(r.b)} ` +
      `| ${r.c === undefined ? '' : percent(r.c)} | ${r.seconds || ''} |`);
  }
  const floorsIndex = args.indexOf('--floors');
  if (floorsIndex < 0) return;
  const floorsFile = args[floorsIndex + 1];
  if (!floorsFile) fail('--floors needs a file');
  // FLOORS: {"<kind> <target> <opt>": {"a": min, "b": min}, ...}
  const floors = JSON.parse(fs.readFileSync(floorsFile, 'utf8'));
  const problems = [];
  // Floors of a model and target this run did not ask for (run.sh --models / --targets) are not
  // checked; a row asked for that failed has a line with `failed` and is checked (and fails).
  const ran = new Set(rows.map((r) => `${r.kind} ${r.target}`));
  const keys = Object.keys(floors).filter((key) => !key.startsWith('//') &&
    ran.has(key.split(' ').slice(0, 2).join(' ')));
  for (const key of keys) {
    const floor = floors[key];
    const row = rows.find((r) => `${r.kind} ${r.target} ${r.opt}` === key && !r.failed);
    if (!row) {
      problems.push(`${key}: no result (quantize or evaluation failed)`);
      continue;
    }
    for (const m of ['a', 'b']) {
      if (floor[m] !== undefined && !(row[m] >= floor[m])) {
        const name = METRIC_NAMES[row.kind][m === 'a' ? 0 : 1];
        problems.push(`${key}: ${name} ${percent(row[m])} % is under the floor ${percent(floor[m])} %`);
      }
    }
  }
  if (problems.length > 0) {
    for (const p of problems) process.stderr.write(`ocr_accuracy: ${p}\n`);
    process.exit(1);
  }
  console.log(`ocr_accuracy: every metric at or above its floor (${keys.length} rows, ${floorsFile})`);
}

const [command, ...rest] = process.argv.slice(2);
if (command === 'eval') {
  evaluate(rest).catch((e) => fail(firstLine(e)));
} else if (command === 'table') {
  table(rest);
} else {
  fail('usage: node ocr_accuracy.js eval ... | table RESULTS.jsonl [--floors FLOORS.json]');
}
