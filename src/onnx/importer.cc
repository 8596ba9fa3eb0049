// ONNX import: ModelProto -> Graph, with Constant folding, subgraph scoping and shape inference.
#include "onnx/importer.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <onnx/shape_inference/implementation.h>

#include <charconv>
#include <exception>
#include <limits>
#include <set>
#include <unordered_set>

#include "core/file_util.h"
#include "core/logging.h"
#include "ir/verifier.h"
#include "onnx/model_check.h"

namespace qalign {
namespace {

bool IsDefaultDomain(const std::string& domain) { return domain.empty() || domain == "ai.onnx"; }

// Domains whose ops qalign tolerates (keeps and exports) besides the default one.
bool IsTolerated(const std::string& domain) {
  return IsDefaultDomain(domain) || domain == "ai.onnx.ml" || domain == "com.microsoft";
}

std::string DescribeNode(const onnx::NodeProto& node) {
  return node.name().empty() ? node.op_type() + " (unnamed)"
                             : node.op_type() + " '" + node.name() + "'";
}

Status WithSource(const std::string& source, const Status& status) {
  return Status(status.code(), source + ": " + status.message());
}

std::string OneLine(std::string text) {
  for (char& c : text) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  while (!text.empty() && text.back() == ' ') text.pop_back();
  return text;
}

// dtype and shape of a tensor TypeProto; other types (sequence, map, optional) stay unknown.
void TypeFromProto(const onnx::TypeProto& type, DataType* dtype, Shape* shape) {
  *dtype = DataType::kUndefined;
  *shape = Shape::Unknown();
  if (!type.has_tensor_type()) return;
  const auto& tensor_type = type.tensor_type();
  const int32_t elem = tensor_type.elem_type();
  if (elem > 0 && elem <= static_cast<int32_t>(DataType::kBFloat16)) {
    *dtype = static_cast<DataType>(elem);
  }
  if (!tensor_type.has_shape()) return;
  shape->rank_known = true;
  for (const auto& d : tensor_type.shape().dim()) {
    Dim dim;
    if (d.has_dim_value()) dim.value = d.dim_value();
    // Shape inference names dims it cannot resolve "unk__<n>"; they carry no information.
    if (d.has_dim_param() && d.dim_param().rfind("unk__", 0) != 0) dim.param = d.dim_param();
    shape->dims.push_back(dim);
  }
}

// The type the file declares for a variable (graph input/output or value_info).
void ApplyDeclaredType(Variable* v, const onnx::ValueInfoProto& info) {
  if (v->is_parameter()) return;
  DataType dtype;
  Shape shape;
  TypeFromProto(info.type(), &dtype, &shape);
  if (dtype != DataType::kUndefined) v->set_dtype(dtype);
  if (shape.rank_known) v->set_shape(std::move(shape));
}

// Adds what shape inference learned without discarding what the file already said.
void MergeInferredType(Variable* v, const onnx::TypeProto& type) {
  if (v->is_parameter()) return;
  DataType dtype;
  Shape inferred;
  TypeFromProto(type, &dtype, &inferred);
  if (v->dtype() == DataType::kUndefined && dtype != DataType::kUndefined) v->set_dtype(dtype);
  if (!inferred.rank_known) return;
  if (!v->shape().rank_known) {
    v->set_shape(std::move(inferred));
    return;
  }
  Shape merged = v->shape();
  if (merged.dims.size() != inferred.dims.size()) return;
  for (size_t i = 0; i < merged.dims.size(); ++i) {
    if (!merged.dims[i].known() && inferred.dims[i].known()) merged.dims[i] = inferred.dims[i];
    if (!merged.dims[i].known() && merged.dims[i].param.empty())
      merged.dims[i].param = inferred.dims[i].param;
  }
  v->set_shape(std::move(merged));
}

StatusOr<Attribute> AttributeFromProto(const onnx::AttributeProto& proto,
                                       const std::string& base_dir) {
  Attribute a;
  bool decoded = !proto.has_ref_attr_name();
  if (decoded) {
    switch (proto.type()) {
      case onnx::AttributeProto::FLOAT:
        a = Attribute::Float(proto.f());
        break;
      case onnx::AttributeProto::INT:
        a = Attribute::Int(proto.i());
        break;
      case onnx::AttributeProto::STRING:
        a = Attribute::String(proto.s());
        break;
      case onnx::AttributeProto::FLOATS:
        a = Attribute::Floats({proto.floats().begin(), proto.floats().end()});
        break;
      case onnx::AttributeProto::INTS:
        a = Attribute::Ints({proto.ints().begin(), proto.ints().end()});
        break;
      case onnx::AttributeProto::STRINGS:
        a = Attribute::Strings({proto.strings().begin(), proto.strings().end()});
        break;
      case onnx::AttributeProto::TENSOR: {
        // A tensor qalign cannot decode (an exotic dtype) is kept serialized instead.
        auto tensor = TensorFromProto(proto.t(), base_dir);
        if (tensor.ok() && proto.t().name().empty()) {
          a = Attribute::FromTensor(std::move(tensor).value());
        } else {
          decoded = false;
        }
        break;
      }
      default:
        decoded = false;
        break;
    }
  }
  if (!decoded) {
    a = Attribute();
    a.kind = Attribute::Kind::kOpaque;
    a.opaque = proto.SerializeAsString();
  }
  a.doc_string = proto.doc_string();
  return a;
}

// The value of a Constant node, from whichever of its value attributes is set.
StatusOr<Tensor> ConstantValue(const onnx::NodeProto& node, const std::string& base_dir) {
  if (node.attribute_size() != 1) {
    return InvalidArgumentError(DescribeNode(node),
                                ": a Constant needs exactly one value attribute, has ",
                                node.attribute_size());
  }
  const onnx::AttributeProto& a = node.attribute(0);
  const std::string& key = a.name();
  if (key == "value") {
    auto tensor = TensorFromProto(a.t(), base_dir);
    if (!tensor.ok()) return WithSource(DescribeNode(node), tensor.status());
    return tensor;
  }
  if (key == "value_float") return Tensor::FromVector<float>({}, {a.f()});
  if (key == "value_int") return Tensor::FromVector<int64_t>({}, {a.i()});
  if (key == "value_floats") {
    return Tensor::FromVector<float>({a.floats_size()}, {a.floats().begin(), a.floats().end()});
  }
  if (key == "value_ints") {
    return Tensor::FromVector<int64_t>({a.ints_size()}, {a.ints().begin(), a.ints().end()});
  }
  if (key == "value_string" || key == "value_strings") {
    const bool scalar = key == "value_string";
    Tensor t(DataType::kString,
             scalar ? std::vector<int64_t>{} : std::vector<int64_t>{a.strings_size()});
    if (scalar) {
      t.strings()[0] = a.s();
    } else {
      for (int i = 0; i < a.strings_size(); ++i) t.strings()[static_cast<size_t>(i)] = a.strings(i);
    }
    return t;
  }
  return UnimplementedError(DescribeNode(node), ": Constant attribute '", key,
                            "' is not supported");
}

// True when the Constant can become a parameter: one output and a dense value attribute.
bool IsFoldableConstant(const onnx::NodeProto& node) {
  if (node.op_type() != "Constant" || !IsDefaultDomain(node.domain())) return false;
  if (node.output_size() != 1 || node.output(0).empty() || node.input_size() != 0) return false;
  if (node.attribute_size() != 1) return false;
  const std::string& key = node.attribute(0).name();
  return key != "sparse_value";
}

// Names a subgraph reads from enclosing scopes: used but not defined inside it.
void CollectFreeNames(const onnx::GraphProto& graph, std::vector<std::string>* free,
                      std::unordered_set<std::string>* seen) {
  std::unordered_set<std::string> defined;
  for (const auto& v : graph.input()) defined.insert(v.name());
  for (const auto& t : graph.initializer()) defined.insert(t.name());
  for (const auto& t : graph.sparse_initializer()) defined.insert(t.values().name());
  for (const auto& node : graph.node()) {
    for (const auto& out : node.output()) defined.insert(out);
  }
  auto use = [&](const std::string& name) {
    if (!name.empty() && !defined.count(name) && seen->insert(name).second) free->push_back(name);
  };
  for (const auto& node : graph.node()) {
    for (const auto& in : node.input()) use(in);
    for (const auto& attr : node.attribute()) {
      std::vector<std::string> inner;
      std::unordered_set<std::string> inner_seen;
      if (attr.has_g()) CollectFreeNames(attr.g(), &inner, &inner_seen);
      for (const auto& g : attr.graphs()) CollectFreeNames(g, &inner, &inner_seen);
      for (const auto& name : inner) use(name);
    }
  }
  for (const auto& out : graph.output()) use(out.name());
}

bool HasSubgraph(const onnx::NodeProto& node) {
  for (const auto& attr : node.attribute()) {
    if (attr.has_g() || attr.graphs_size() > 0) return true;
  }
  return false;
}

StatusOr<Variable*> GetOrCreate(Graph& graph, const std::string& name) {
  if (Variable* v = graph.FindVariable(name)) return v;
  return graph.AddVariable(name);
}

// Checks --input-shape against the model's inputs and fixes the inputs' shapes.
Status ApplyInputShapes(Graph& graph, const ImportOptions& options) {
  for (const auto& [name, dims] : options.input_shapes) {
    Variable* v = graph.FindVariable(name);
    if (!v || !v->is_graph_input()) {
      std::string names;
      for (const Variable* in : graph.inputs()) names += (names.empty() ? "" : ", ") + in->name();
      return InvalidArgumentError("--input-shape names '", name,
                                  "', which is not an input of the model (inputs: ", names, ")");
    }
    const Shape& declared = v->shape();
    if (declared.rank_known) {
      if (declared.dims.size() != dims.size()) {
        return InvalidArgumentError("--input-shape ", name, ": ", dims.size(),
                                    " dims given, the input has rank ", declared.dims.size(), " ",
                                    declared.ToString());
      }
      for (size_t i = 0; i < dims.size(); ++i) {
        if (declared.dims[i].known() && declared.dims[i].value != dims[i]) {
          return InvalidArgumentError("--input-shape ", name, ": dim ", i, " is fixed to ",
                                      declared.dims[i].value, " in the model, ", dims[i], " given");
        }
      }
    }
    // Random calibration input and the executor allocate this shape.
    auto bytes = CheckedTensorBytes(v->dtype() == DataType::kUndefined ? DataType::kFloat
                                                                       : v->dtype(),
                                    dims, "--input-shape " + name);
    if (!bytes.ok()) return bytes.status();
    v->set_shape(Shape::Of(dims));
  }
  return Status::Ok();
}

// Runs ONNX shape inference on a copy of the model with the input shapes fixed, and merges the
// inferred types into the graph. Failures only warn: the shapes stay as the file gave them.
void InferShapes(const onnx::ModelProto& model, Graph& graph, const ImportOptions& options,
                 const std::string& source) {
  auto prepare = [&] {
    onnx::ModelProto copy = model;
    onnx::GraphProto* g = copy.mutable_graph();
    for (auto& input : *g->mutable_input()) {
      auto it = options.input_shapes.find(input.name());
      if (it == options.input_shapes.end()) continue;
      auto* shape = input.mutable_type()->mutable_tensor_type()->mutable_shape();
      shape->clear_dim();
      for (int64_t d : it->second) shape->add_dim()->set_dim_value(d);
    }
    // Constant nodes with a tensor value become initializers in the copy: data propagation reads
    // initializers as known values (e.g. a Reshape's target shape).
    google::protobuf::RepeatedPtrField<onnx::NodeProto> kept;
    for (auto& node : *g->mutable_node()) {
      if (IsFoldableConstant(node) && node.attribute(0).name() == "value") {
        onnx::TensorProto* init = g->add_initializer();
        *init = node.attribute(0).t();
        init->set_name(node.output(0));
      } else {
        *kept.Add() = std::move(node);
      }
    }
    g->mutable_node()->Swap(&kept);
    return copy;
  };
  // Data propagation (shape values through Shape/Slice/Concat) first; if it trips on the model,
  // plain inference still gives most shapes.
  onnx::ModelProto inferred;
  std::string failure;
  for (bool data_propagation : {true, false}) {
    inferred = prepare();
    try {
      onnx::ShapeInferenceOptions inference_options(/*check_type_val=*/false,
                                                    /*strict_mode_val=*/0, data_propagation);
      onnx::shape_inference::InferShapes(inferred, GuardedSchemaRegistry(), inference_options);
      failure.clear();
      break;
    } catch (const std::exception& e) {
      failure = OneLine(e.what());
    }
  }
  if (!failure.empty()) {
    LogWarning(source,
               ": ONNX shape inference failed, intermediate shapes stay unknown: ", failure);
    return;
  }
  auto merge = [&](const onnx::ValueInfoProto& info) {
    if (Variable* v = graph.FindVariable(info.name())) MergeInferredType(v, info.type());
  };
  for (const auto& info : inferred.graph().value_info()) merge(info);
  for (const auto& info : inferred.graph().output()) merge(info);
}

}  // namespace

StatusOr<std::pair<std::string, std::vector<int64_t>>> ParseInputShapeFlag(
    const std::string& flag) {
  auto bad = [&](const std::string& why) {
    return InvalidArgumentError("--input-shape '", flag, "': ", why,
                                " (expected NAME=D,D,..., e.g. x=1,3,640,640)");
  };
  const size_t eq = flag.rfind('=');
  if (eq == std::string::npos) return bad("missing '='");
  std::string name = flag.substr(0, eq);
  const std::string dims_text = flag.substr(eq + 1);
  if (name.empty()) return bad("empty input name");
  if (dims_text.empty()) return bad("no dims");
  std::vector<int64_t> dims;
  size_t start = 0;
  while (start <= dims_text.size()) {
    size_t comma = dims_text.find(',', start);
    if (comma == std::string::npos) comma = dims_text.size();
    const std::string item = dims_text.substr(start, comma - start);
    int64_t value = 0;
    const auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), value);
    if (item.empty() || ec != std::errc() || ptr != item.data() + item.size()) {
      return bad("'" + item + "' is not a whole number");
    }
    if (value < 0) return bad("dim " + item + " is negative");
    dims.push_back(value);
    start = comma + 1;
  }
  return std::make_pair(std::move(name), std::move(dims));
}

StatusOr<std::unique_ptr<Graph>> ImportOnnxModelFromProto(const onnx::ModelProto& model,
                                                          const std::string& base_dir,
                                                          const ImportOptions& options,
                                                          const std::string& source) {
  if (!model.has_graph() || model.ir_version() <= 0) {
    return InvalidArgumentError(source, ": not an ONNX model (no ",
                                model.has_graph() ? "IR version" : "graph", ")");
  }
  // Before anything reads the graph: shape inference must never see what can crash it.
  QALIGN_RETURN_IF_ERROR(CheckModelProto(model, source));
  auto graph = std::make_unique<Graph>();
  ModelInfo& info = graph->info();
  info.ir_version = model.ir_version();
  info.opset_imports.clear();
  for (const auto& opset : model.opset_import()) {
    info.opset_imports[IsDefaultDomain(opset.domain()) ? "" : opset.domain()] = opset.version();
  }
  auto default_opset = info.opset_imports.find("");
  if (default_opset != info.opset_imports.end()) {
    const int64_t version = default_opset->second;
    if (version < kMinOnnxOpset) {
      return UnimplementedError(source, ": default-domain opset ", version, " is older than ",
                                kMinOnnxOpset, "; qalign reads opsets ", kMinOnnxOpset, " to ",
                                kMaxOnnxOpset);
    }
    if (version > kMaxOnnxOpset) {
      LogWarning(source, ": default-domain opset ", version, " is newer than ", kMaxOnnxOpset,
                 ", the newest qalign's ONNX library knows; importing anyway, shape inference may "
                 "be incomplete");
    }
  }
  info.producer_name = model.producer_name();
  info.producer_version = model.producer_version();
  info.domain = model.domain();
  info.model_version = model.model_version();
  info.doc_string = model.doc_string();
  for (const auto& prop : model.metadata_props())
    info.metadata_props.emplace_back(prop.key(), prop.value());
  std::set<std::string> function_domains;
  for (const auto& f : model.functions()) {
    info.functions.push_back(f.SerializeAsString());
    function_domains.insert(f.domain());
  }
  for (const auto& t : model.training_info()) info.training_info.push_back(t.SerializeAsString());

  const onnx::GraphProto& g = model.graph();
  info.graph_name = g.name();
  info.graph_doc_string = g.doc_string();
  if (g.sparse_initializer_size() > 0) {
    return UnimplementedError(source, ": sparse initializer '",
                              g.sparse_initializer(0).values().name(), "' is not supported");
  }

  for (const auto& init : g.initializer()) {
    if (init.name().empty()) return InvalidArgumentError(source, ": an initializer has no name");
    auto tensor = TensorFromProto(init, base_dir);
    if (!tensor.ok()) return WithSource(source, tensor.status());
    auto v = graph->AddParameter(init.name(), std::move(tensor).value());
    if (!v.ok()) return WithSource(source, v.status());
    (*v)->set_origin(Variable::Origin::kInitializer);
    (*v)->doc_string = init.doc_string();
  }
  for (const auto& input : g.input()) {
    Variable* existing = graph->FindVariable(input.name());
    if (existing && existing->is_parameter()) {
      info.initializer_inputs.push_back(input.name());  // old IR versions list initializers here
      continue;
    }
    auto v = graph->AddVariable(input.name());
    if (!v.ok()) return WithSource(source, v.status());
    ApplyDeclaredType(*v, input);
    (*v)->doc_string = input.doc_string();
    graph->AddInput(*v);
  }

  std::vector<std::pair<Operation*, const onnx::NodeProto*>> subgraph_ops;
  for (const auto& node : g.node()) {
    ++info.source_op_counts[node.op_type()];
    if (!IsTolerated(node.domain()) && !function_domains.count(node.domain())) {
      return UnimplementedError(source, ": ", DescribeNode(node), " uses unknown op domain '",
                                node.domain(), "'");
    }
    if (IsDefaultDomain(node.domain()) && default_opset == info.opset_imports.end()) {
      return InvalidArgumentError(
          source, ": ", DescribeNode(node),
          " is in the default domain, which the model imports no opset for");
    }
    if (IsFoldableConstant(node)) {
      auto value = ConstantValue(node, base_dir);
      if (!value.ok()) return WithSource(source, value.status());
      auto v = GetOrCreate(*graph, node.output(0));
      if (!v.ok()) return WithSource(source, v.status());
      if ((*v)->producer() || (*v)->is_parameter() || (*v)->is_graph_input()) {
        return InvalidArgumentError(source, ": ", DescribeNode(node), ": output '", node.output(0),
                                    "' is already defined by another node, input or initializer");
      }
      (*v)->set_data(std::move(value).value());
      (*v)->set_origin(Variable::Origin::kConstantNode);
      (*v)->constant_node_name = node.name();
      continue;
    }
    std::vector<Variable*> inputs;
    for (const auto& name : node.input()) {
      if (name.empty()) {
        inputs.push_back(nullptr);
        continue;
      }
      auto v = GetOrCreate(*graph, name);
      if (!v.ok()) return WithSource(source, v.status());
      inputs.push_back(*v);
    }
    std::vector<Variable*> outputs;
    for (const auto& name : node.output()) {
      if (name.empty()) {
        outputs.push_back(nullptr);
        continue;
      }
      auto v = GetOrCreate(*graph, name);
      if (!v.ok()) return WithSource(source, v.status());
      if ((*v)->is_parameter() || (*v)->is_graph_input()) {
        return InvalidArgumentError(source, ": ", DescribeNode(node), ": output '", name,
                                    "' is also a graph input or parameter");
      }
      outputs.push_back(*v);
    }
    auto op = graph->AddOperation(node.op_type(), node.name(), inputs, outputs, node.domain());
    if (!op.ok()) return WithSource(source, op.status());
    for (const auto& attr : node.attribute()) {
      auto a = AttributeFromProto(attr, base_dir);
      if (!a.ok()) return WithSource(source, WithSource(DescribeNode(node), a.status()));
      (*op)->SetAttribute(attr.name(), std::move(a).value());
    }
    (*op)->doc_string = node.doc_string();
    if (HasSubgraph(node)) subgraph_ops.emplace_back(*op, &node);
  }

  // Outer-scope names read inside If/Loop/Scan bodies become implicit inputs, so ordering and
  // verification see the dependency.
  for (const auto& [op, node] : subgraph_ops) {
    std::vector<std::string> free;
    std::unordered_set<std::string> seen;
    for (const auto& attr : node->attribute()) {
      if (attr.has_g()) CollectFreeNames(attr.g(), &free, &seen);
      for (const auto& sub : attr.graphs()) CollectFreeNames(sub, &free, &seen);
    }
    for (const auto& name : free) {
      auto v = GetOrCreate(*graph, name);
      if (!v.ok()) return WithSource(source, v.status());
      graph->AddImplicitInput(op, *v);
    }
  }

  for (const auto& output : g.output()) {
    auto v = GetOrCreate(*graph, output.name());
    if (!v.ok()) return WithSource(source, v.status());
    ApplyDeclaredType(*v, output);
    (*v)->doc_string = output.doc_string();
    graph->AddOutput(*v);
  }
  for (const auto& value_info : g.value_info()) {
    Variable* v = graph->FindVariable(value_info.name());
    if (!v) {
      LogDebug(source, ": value_info for unknown tensor '", value_info.name(), "' dropped");
      continue;
    }
    ApplyDeclaredType(v, value_info);
    v->has_value_info = true;
    if (v->doc_string.empty()) v->doc_string = value_info.doc_string();
  }

  Status verified = VerifyGraph(*graph);
  if (!verified.ok()) return WithSource(source, verified);
  if (!options.input_shapes.empty()) {
    Status status = ApplyInputShapes(*graph, options);
    if (!status.ok()) return WithSource(source, status);
  }
  if (options.infer_shapes) InferShapes(model, *graph, options, source);
  return graph;
}

StatusOr<std::unique_ptr<Graph>> ImportOnnxModel(const std::string& path,
                                                 const ImportOptions& options) {
  QALIGN_ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(path));
  if (bytes.empty()) return InvalidArgumentError(path, ": empty file, not an ONNX model");
  if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max())) {
    return InvalidArgumentError(path, ": ", bytes.size(),
                                " bytes, larger than a protobuf file can be (2 GiB); store the "
                                "weights as external data");
  }
  onnx::ModelProto model;
  {
    google::protobuf::io::ArrayInputStream raw(bytes.data(), static_cast<int>(bytes.size()));
    google::protobuf::io::CodedInputStream coded(&raw);
    coded.SetTotalBytesLimit(std::numeric_limits<int>::max());
    if (!model.ParseFromCodedStream(&coded) || !coded.ConsumedEntireMessage()) {
      return InvalidArgumentError(path,
                                  ": not a valid ONNX model (protobuf parse failed; "
                                  "truncated or not an .onnx file)");
    }
  }
  bytes.clear();
  bytes.shrink_to_fit();
  return ImportOnnxModelFromProto(model, DirName(path), options, path);
}

}  // namespace qalign
