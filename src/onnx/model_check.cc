// CheckModelProto: the model-level validation the importer runs before shape inference.
#include "onnx/model_check.h"

#include <onnx/defs/schema.h>
#include <onnx/defs/shape_inference.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>

#include "ir/tensor.h"

namespace qalign {
namespace {

using Opsets = std::map<std::string, int64_t>;

std::string Domain(const std::string& domain) { return domain == "ai.onnx" ? "" : domain; }

// A name as it can go into a message: unchanged when valid UTF-8, escaped otherwise.
std::string Printable(const std::string& name) {
  return IsValidUtf8(name) ? name : EscapeBytes(name);
}

std::string DescribeNode(const onnx::NodeProto& node) {
  const std::string type = Printable(node.op_type());
  return node.name().empty() ? type + " (unnamed)" : type + " '" + Printable(node.name()) + "'";
}

const char* AttributeTypeName(onnx::AttributeProto::AttributeType type) {
  switch (type) {
    case onnx::AttributeProto::FLOAT:
      return "FLOAT";
    case onnx::AttributeProto::INT:
      return "INT";
    case onnx::AttributeProto::STRING:
      return "STRING";
    case onnx::AttributeProto::TENSOR:
      return "TENSOR";
    case onnx::AttributeProto::GRAPH:
      return "GRAPH";
    case onnx::AttributeProto::SPARSE_TENSOR:
      return "SPARSE_TENSOR";
    case onnx::AttributeProto::TYPE_PROTO:
      return "TYPE_PROTO";
    case onnx::AttributeProto::FLOATS:
      return "FLOATS";
    case onnx::AttributeProto::INTS:
      return "INTS";
    case onnx::AttributeProto::STRINGS:
      return "STRINGS";
    case onnx::AttributeProto::TENSORS:
      return "TENSORS";
    case onnx::AttributeProto::GRAPHS:
      return "GRAPHS";
    case onnx::AttributeProto::SPARSE_TENSORS:
      return "SPARSE_TENSORS";
    case onnx::AttributeProto::TYPE_PROTOS:
      return "TYPE_PROTOS";
    default:
      return "UNDEFINED";
  }
}

// Integer attributes that ONNX's shape inference (and qalign's kernels) divide by or size loops
// with: each value must be at least `min`.
struct IntBound {
  const char* attribute;
  int64_t min;
};
const std::map<std::string, std::vector<IntBound>>& IntBounds() {
  static const auto* bounds = [] {
    const std::vector<IntBound> conv = {
        {"strides", 1}, {"dilations", 1}, {"kernel_shape", 1}, {"group", 1}, {"pads", 0}};
    const std::vector<IntBound> pool = {
        {"strides", 1}, {"dilations", 1}, {"kernel_shape", 1}, {"pads", 0}};
    const std::vector<IntBound> block = {{"blocksize", 1}};
    return new std::map<std::string, std::vector<IntBound>>{
        {"Conv", conv},          {"ConvTranspose", conv}, {"ConvInteger", conv},
        {"QLinearConv", conv},   {"DeformConv", conv},    {"MaxPool", pool},
        {"AveragePool", pool},   {"LpPool", pool},        {"MaxUnpool", pool},
        {"DepthToSpace", block}, {"SpaceToDepth", block}};
  }();
  return *bounds;
}

Status CheckAttributes(const onnx::NodeProto& node, const Opsets& opsets,
                       const std::string& source) {
  const std::string domain = Domain(node.domain());
  const auto opset = opsets.find(domain);
  const onnx::OpSchema* schema =
      opset == opsets.end()
          ? nullptr
          : onnx::OpSchemaRegistry::Schema(node.op_type(), static_cast<int>(opset->second), domain);
  for (const auto& attr : node.attribute()) {
    if (attr.has_ref_attr_name()) continue;  // a function body's reference, typed by the caller
    if (schema != nullptr) {
      const auto& declared = schema->attributes();
      const auto it = declared.find(attr.name());
      if (it != declared.end() && attr.type() != it->second.type) {
        return InvalidArgumentError(
            source, ": ", DescribeNode(node), ": attribute '", EscapeBytes(attr.name()), "' is ",
            AttributeTypeName(attr.type()), ", the op needs ", AttributeTypeName(it->second.type));
      }
    }
    if (domain.empty()) {
      const auto bounds = IntBounds().find(node.op_type());
      if (bounds == IntBounds().end()) continue;
      for (const IntBound& bound : bounds->second) {
        if (attr.name() != bound.attribute) continue;
        std::vector<int64_t> values(attr.ints().begin(), attr.ints().end());
        if (attr.type() == onnx::AttributeProto::INT) values = {attr.i()};
        for (int64_t v : values) {
          if (v < bound.min) {
            return InvalidArgumentError(source, ": ", DescribeNode(node), ": attribute '",
                                        attr.name(), "' has value ", v, ", must be at least ",
                                        bound.min);
          }
        }
      }
    }
  }
  return Status::Ok();
}

// Declared dims: none negative; a graph input with every dim known must fit the tensor limit.
Status CheckDeclaredShape(const onnx::ValueInfoProto& info, const char* kind, bool allocated,
                          const std::string& source) {
  if (!info.type().has_tensor_type() || !info.type().tensor_type().has_shape()) {
    return Status::Ok();
  }
  const auto& tensor_type = info.type().tensor_type();
  std::vector<int64_t> dims;
  bool all_known = true;
  for (const auto& d : tensor_type.shape().dim()) {
    if (!d.has_dim_value()) {
      all_known = false;
      continue;
    }
    if (d.dim_value() < 0) {
      return InvalidArgumentError(source, ": ", kind, " '", info.name(), "' declares dim ",
                                  d.dim_value(),
                                  "; dims must be >= 0 (leave a dim unknown with "
                                  "dim_param)");
    }
    dims.push_back(d.dim_value());
  }
  if (!allocated || !all_known) return Status::Ok();
  const int32_t elem = tensor_type.elem_type();
  const DataType dtype = elem > 0 && elem <= static_cast<int32_t>(DataType::kBFloat16)
                             ? static_cast<DataType>(elem)
                             : DataType::kUint8;
  auto bytes = CheckedTensorBytes(dtype, dims, std::string(kind) + " '" + info.name() + "'");
  if (!bytes.ok()) return Status(bytes.status().code(), source + ": " + bytes.status().message());
  return Status::Ok();
}

Status CheckName(const std::string& name, const char* kind, const std::string& owner,
                 const std::string& source) {
  if (IsValidUtf8(name)) return Status::Ok();
  return InvalidArgumentError(source, ": ", owner.empty() ? "" : owner + ": ", kind, " '",
                              EscapeBytes(name),
                              "' is not valid UTF-8 (reports and JSON output need UTF-8 names)");
}

Status CheckGraph(const onnx::GraphProto& graph, const Opsets& opsets, bool top_level,
                  const std::string& source) {
  QALIGN_RETURN_IF_ERROR(CheckName(graph.name(), "graph name", "", source));
  for (const auto& t : graph.initializer()) {
    QALIGN_RETURN_IF_ERROR(CheckName(t.name(), "initializer name", "", source));
  }
  // Names first: the shape messages below quote them.
  for (const auto& v : graph.input()) {
    QALIGN_RETURN_IF_ERROR(CheckName(v.name(), "input name", "", source));
  }
  for (const auto& v : graph.output()) {
    QALIGN_RETURN_IF_ERROR(CheckName(v.name(), "output name", "", source));
  }
  for (const auto& v : graph.value_info()) {
    QALIGN_RETURN_IF_ERROR(CheckName(v.name(), "value_info name", "", source));
  }
  std::set<std::string> initializers;
  for (const auto& t : graph.initializer()) initializers.insert(t.name());
  for (const auto& v : graph.input()) {
    // An initializer listed as an input (old IR versions) is allocated from its data instead.
    const bool allocated = top_level && !initializers.count(v.name());
    QALIGN_RETURN_IF_ERROR(CheckDeclaredShape(v, "input", allocated, source));
  }
  for (const auto& v : graph.output()) {
    QALIGN_RETURN_IF_ERROR(CheckDeclaredShape(v, "output", false, source));
  }
  for (const auto& v : graph.value_info()) {
    QALIGN_RETURN_IF_ERROR(CheckDeclaredShape(v, "value_info", false, source));
  }
  for (const auto& node : graph.node()) {
    QALIGN_RETURN_IF_ERROR(CheckName(node.op_type(), "op type", "", source));
    QALIGN_RETURN_IF_ERROR(CheckName(node.domain(), "op domain", DescribeNode(node), source));
    QALIGN_RETURN_IF_ERROR(CheckName(node.name(), "node name", "", source));
    for (const auto& name : node.input()) {
      QALIGN_RETURN_IF_ERROR(CheckName(name, "input name", DescribeNode(node), source));
    }
    for (const auto& name : node.output()) {
      QALIGN_RETURN_IF_ERROR(CheckName(name, "output name", DescribeNode(node), source));
    }
    for (const auto& attr : node.attribute()) {
      QALIGN_RETURN_IF_ERROR(CheckName(attr.name(), "attribute name", DescribeNode(node), source));
    }
    QALIGN_RETURN_IF_ERROR(CheckAttributes(node, opsets, source));
    for (const auto& attr : node.attribute()) {
      if (attr.has_g()) QALIGN_RETURN_IF_ERROR(CheckGraph(attr.g(), opsets, false, source));
      for (const auto& g : attr.graphs()) {
        QALIGN_RETURN_IF_ERROR(CheckGraph(g, opsets, false, source));
      }
    }
  }
  return Status::Ok();
}

// Where the data input and the weight (-1: none) of a conv or pool op are.
struct ConvPoolInputs {
  int x;
  int w;
};
const std::map<std::string, ConvPoolInputs>& ConvPoolOps() {
  static const auto* ops = new std::map<std::string, ConvPoolInputs>{
      {"Conv", {0, 1}},         {"ConvTranspose", {0, 1}}, {"ConvInteger", {0, 1}},
      {"QLinearConv", {0, 3}},  {"DeformConv", {0, 1}},    {"MaxPool", {0, -1}},
      {"AveragePool", {0, -1}}, {"LpPool", {0, -1}},       {"MaxUnpool", {0, -1}}};
  return *ops;
}

// Before ONNX's inference of a conv or pool op: input rank >= 2, a weight of the same rank, and
// per-axis attributes as long as the spatial rank (pads twice as long).
void CheckConvPoolRanks(onnx::InferenceContext& ctx, const ConvPoolInputs& io,
                        const std::string& op_type) {
  if (ctx.getNumInputs() <= static_cast<size_t>(io.x) || !onnx::hasInputShape(ctx, io.x)) return;
  const int rank = ctx.getInputType(io.x)->tensor_type().shape().dim_size();
  if (rank < 2) fail_shape_inference(op_type, ": input of rank ", rank, ", needs at least 2");
  if (io.w >= 0 && ctx.getNumInputs() > static_cast<size_t>(io.w) &&
      onnx::hasInputShape(ctx, io.w)) {
    const int w_rank = ctx.getInputType(io.w)->tensor_type().shape().dim_size();
    if (w_rank != rank) {
      fail_shape_inference(op_type, ": weight of rank ", w_rank, " for an input of rank ", rank);
    }
  }
  const int spatial = rank - 2;
  for (const char* name : {"strides", "dilations", "kernel_shape", "output_padding"}) {
    const onnx::AttributeProto* a = ctx.getAttribute(name);
    if (a != nullptr && a->ints_size() != spatial) {
      fail_shape_inference(op_type, ": '", name, "' has ", a->ints_size(), " values for ", spatial,
                           " spatial dims");
    }
  }
  const onnx::AttributeProto* pads = ctx.getAttribute("pads");
  if (pads != nullptr && pads->ints_size() != 2 * spatial) {
    fail_shape_inference(op_type, ": 'pads' has ", pads->ints_size(), " values for ", spatial,
                         " spatial dims");
  }
}

// Before any op's inference: every input the schema requires has a type. An input produced by an
// op ONNX does not know, or a graph input declared without a type, reaches the inference
// function as a null type, which many of ONNX's functions dereference unchecked (Shape on an
// untyped input: SIGSEGV, found by fuzz/fuzz_onnx_import).
void CheckRequiredInputsTyped(onnx::InferenceContext& ctx, const onnx::OpSchema& schema) {
  const auto& formal = schema.inputs();
  for (size_t i = 0; i < ctx.getNumInputs(); ++i) {
    if (formal.empty()) break;
    const auto& param = formal[std::min(i, formal.size() - 1)];
    if (param.GetOption() == onnx::OpSchema::Optional) continue;
    if (ctx.getInputType(i) == nullptr) {
      fail_shape_inference(schema.Name(), ": input ", i, " has no known type");
    }
  }
}

class GuardedRegistry : public onnx::ISchemaRegistry {
 public:
  const onnx::OpSchema* GetSchema(const std::string& key, const int max_inclusive_version,
                                  const std::string& domain) const override {
    const onnx::OpSchema* schema =
        onnx::OpSchemaRegistry::Instance()->GetSchema(key, max_inclusive_version, domain);
    if (schema == nullptr) return schema;
    std::lock_guard<std::mutex> lock(mutex_);
    auto& guarded = guarded_[schema];
    if (!guarded) {
      guarded = std::make_unique<onnx::OpSchema>(*schema);
      onnx::InferenceFunction original = schema->GetTypeAndShapeInferenceFunction();
      const auto op = ConvPoolOps().find(key);
      const bool conv_pool = (domain.empty() || domain == "ai.onnx") && op != ConvPoolOps().end();
      const ConvPoolInputs io = conv_pool ? op->second : ConvPoolInputs{-1, -1};
      const onnx::OpSchema* copy = guarded.get();
      guarded->TypeAndShapeInferenceFunction(
          [original, io, conv_pool, key, copy](onnx::InferenceContext& ctx) {
            CheckRequiredInputsTyped(ctx, *copy);
            if (conv_pool) CheckConvPoolRanks(ctx, io, key);
            if (original) original(ctx);
          });
    }
    return guarded.get();
  }

 private:
  mutable std::mutex mutex_;
  mutable std::map<const onnx::OpSchema*, std::unique_ptr<onnx::OpSchema>> guarded_;
};

}  // namespace

const onnx::ISchemaRegistry* GuardedSchemaRegistry() {
  static const auto* registry = new GuardedRegistry();
  return registry;
}

bool IsValidUtf8(const std::string& text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    const unsigned char c = *p;
    int extra = 0;
    uint32_t code = 0, min = 0;
    if (c < 0x80) {
      ++p;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      extra = 1, code = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2, code = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3, code = c & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (end - p <= extra) return false;
    for (int i = 1; i <= extra; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      code = (code << 6) | (p[i] & 0x3F);
    }
    if (code < min || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return false;
    p += extra + 1;
  }
  return true;
}

std::string EscapeBytes(const std::string& text) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : text) {
    if (c >= 0x20 && c < 0x7F && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    }
  }
  return out;
}

Status CheckModelProto(const onnx::ModelProto& model, const std::string& source) {
  const onnx::GraphProto& graph = model.graph();
  if (graph.output_size() == 0) {
    return InvalidArgumentError(source,
                                ": the graph has no outputs; a model must declare at "
                                "least one");
  }
  Opsets opsets;
  for (const auto& opset : model.opset_import()) opsets[Domain(opset.domain())] = opset.version();
  return CheckGraph(graph, opsets, /*top_level=*/true, source);
}

}  // namespace qalign
