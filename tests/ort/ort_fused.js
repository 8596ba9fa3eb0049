// Test-only: the graph ONNX Runtime actually runs. node ort_fused.js MODEL OUT.json [--level L]
// Loads MODEL with graph optimizations at level L (default all) and
// SessionOptions.optimizedModelFilePath, reads the optimized model back and writes OUT.json:
//   {"op_counts": {"[domain:]OpType": n, ...},
//    "round_trips": [{"op": "OpType", "name": "...", "dq_inputs": k[, "expanded_from": "HardSwish"]}],
//    "dq_consumers": {...}, "q_producers": {...}}
// where a round trip is a float op (not DequantizeLinear / QuantizeLinear) that reads at least one
// DequantizeLinear output and whose output some QuantizeLinear reads: integer data turned to float
// for one op and back, which ORT fuses into an integer kernel when it has one for that op.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const ort = require(path.join(__dirname, 'node_modules', 'onnxruntime-node'));

function fail(message) {
  process.stderr.write(`ort_fused: ${message}\n`);
  process.exit(1);
}

// Minimal protobuf reader: only the fields of ModelProto -> GraphProto -> NodeProto used here
// (ModelProto.graph = 7; GraphProto.node = 1; NodeProto.input = 1, output = 2, name = 3,
// op_type = 4, domain = 7). Everything else is skipped by wire type.
function* fields(buf, start, end) {
  let pos = start;
  const varint = () => {
    let result = 0;
    let mult = 1;
    for (;;) {
      if (pos >= end) fail('truncated protobuf varint');
      const b = buf[pos++];
      result += (b & 0x7f) * mult;
      if ((b & 0x80) === 0) return result;
      mult *= 128;
    }
  };
  while (pos < end) {
    const key = varint();
    const field = Math.floor(key / 8);
    const wire = key % 8;
    if (wire === 0) {
      yield { field, wire, value: varint() };
    } else if (wire === 1) {
      pos += 8;
    } else if (wire === 2) {
      const len = varint();
      if (pos + len > end) fail('truncated protobuf field');
      yield { field, wire, start: pos, end: pos + len };
      pos += len;
    } else if (wire === 5) {
      pos += 4;
    } else {
      fail(`unsupported protobuf wire type ${wire}`);
    }
  }
}

function readNodes(buf) {
  let graph = null;
  for (const f of fields(buf, 0, buf.length)) if (f.field === 7 && f.wire === 2) graph = f;
  if (!graph) fail('optimized model has no graph');
  const nodes = [];
  for (const f of fields(buf, graph.start, graph.end)) {
    if (f.field !== 1 || f.wire !== 2) continue;
    const node = { inputs: [], outputs: [], name: '', op: '', domain: '' };
    for (const g of fields(buf, f.start, f.end)) {
      if (g.wire !== 2) continue;
      const text = buf.toString('utf8', g.start, g.end);
      if (g.field === 1) node.inputs.push(text);
      else if (g.field === 2) node.outputs.push(text);
      else if (g.field === 3) node.name = text;
      else if (g.field === 4) node.op = text;
      else if (g.field === 7) node.domain = text;
    }
    nodes.push(node);
  }
  return nodes;
}

function analyse(nodes) {
  const qualified = (n) => (n.domain && n.domain !== 'ai.onnx' ? `${n.domain}:${n.op}` : n.op);
  const isDq = (n) => n.op === 'DequantizeLinear';
  const isQ = (n) => n.op === 'QuantizeLinear';
  const producer = new Map();
  const consumers = new Map();
  for (const n of nodes) {
    for (const o of n.outputs) producer.set(o, n);
    for (const i of n.inputs) {
      if (!consumers.has(i)) consumers.set(i, []);
      consumers.get(i).push(n);
    }
  }
  const opCounts = {};
  const roundTrips = [];
  for (const n of nodes) {
    const key = qualified(n);
    opCounts[key] = (opCounts[key] || 0) + 1;
    if (isDq(n) || isQ(n)) continue;
    // Only activation DQs count: a DQ of a constant (weights) feeding a float op is a float
    // weight, not a round trip of data.
    const dqInputs = n.inputs.filter((i) => {
      const p = producer.get(i);
      return p && isDq(p) && producer.has(p.inputs[0]);
    }).length;
    const quantizedAfter = n.outputs.some((o) => (consumers.get(o) || []).some(isQ));
    if (dqInputs > 0 && quantizedAfter) {
      const trip = { op: key, name: n.name, dq_inputs: dqInputs };
      // ORT's CPU provider has no HardSwish kernel: it expands HardSwish(x) into
      // Mul(x, HardSigmoid(x)). Such a Mul is the HardSwish, not a float Mul ORT could fuse.
      if (n.op === 'Mul' && n.inputs.length === 2) {
        const [a, b] = n.inputs.map((i) => producer.get(i));
        const gate = (g, other) => g && g.op === 'HardSigmoid' && g.inputs[0] === other;
        if (gate(a, n.inputs[1]) || gate(b, n.inputs[0])) trip.expanded_from = 'HardSwish';
      }
      roundTrips.push(trip);
    }
  }
  // Where the remaining activation DequantizeLinear / QuantizeLinear nodes sit: the op types that
  // read a DQ of data and the op types whose output a Q reads.
  const dqConsumers = {};
  const qProducers = {};
  for (const n of nodes) {
    if (isDq(n) && producer.has(n.inputs[0])) {
      for (const c of consumers.get(n.outputs[0]) || []) dqConsumers[qualified(c)] = (dqConsumers[qualified(c)] || 0) + 1;
    }
    if (isQ(n)) {
      const p = producer.get(n.inputs[0]);
      const key = p ? qualified(p) : '(graph input)';
      qProducers[key] = (qProducers[key] || 0) + 1;
    }
  }
  return { op_counts: opCounts, round_trips: roundTrips, dq_consumers: dqConsumers, q_producers: qProducers };
}

async function main() {
  const args = process.argv.slice(2);
  let level = 'all';
  const positional = [];
  for (let i = 0; i < args.length; ++i) {
    if (args[i] === '--level') level = args[++i];
    else positional.push(args[i]);
  }
  if (positional.length !== 2) fail('usage: node ort_fused.js MODEL OUT.json [--level L]');
  const [model, outJson] = positional;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ort_fused_'));
  const optimized = path.join(dir, 'optimized.onnx');
  try {
    try {
      const session = await ort.InferenceSession.create(model, {
        intraOpNumThreads: 1,
        interOpNumThreads: 1,
        graphOptimizationLevel: level,
        optimizedModelFilePath: optimized,
      });
      await session.release();
    } catch (e) {
      fail(`${model}: ONNX Runtime cannot load the model: ${String(e.message || e).split('\n')[0]}`);
    }
    if (!fs.existsSync(optimized)) fail(`${model}: ONNX Runtime wrote no optimized model`);
    const result = analyse(readNodes(fs.readFileSync(optimized)));
    fs.writeFileSync(outJson, JSON.stringify(result, null, 1) + '\n');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  main().catch((e) => fail(String(e && e.stack ? e.stack : e).split('\n')[0]));
}
module.exports = { readNodes, analyse };
