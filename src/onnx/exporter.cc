// ONNX export: Graph -> ModelProto.
#include "onnx/exporter.h"

#include <limits>
#include <unordered_set>

#include "core/file_util.h"
#include "onnx/tensor_proto.h"

namespace qalign {
namespace {

void VariableToValueInfo(const Variable& v, onnx::ValueInfoProto* info) {
  info->set_name(v.name());
  if (!v.doc_string.empty()) info->set_doc_string(v.doc_string);
  if (v.dtype() == DataType::kUndefined && !v.shape().rank_known) return;
  auto* tensor_type = info->mutable_type()->mutable_tensor_type();
  tensor_type->set_elem_type(static_cast<int32_t>(v.dtype()));
  if (!v.shape().rank_known) return;
  auto* shape = tensor_type->mutable_shape();
  for (const Dim& d : v.shape().dims) {
    auto* dim = shape->add_dim();
    if (d.known()) {
      dim->set_dim_value(d.value);
    } else if (!d.param.empty()) {
      dim->set_dim_param(d.param);
    }
  }
}

Status AttributeToProto(const std::string& name, const Attribute& a, const Operation& op,
                        onnx::AttributeProto* proto) {
  if (a.kind == Attribute::Kind::kOpaque) {
    if (!proto->ParseFromString(a.opaque)) {
      return InternalError(op.Describe(), ": attribute '", name,
                           "' holds a corrupt serialized proto");
    }
    proto->set_name(name);
    return Status::Ok();
  }
  proto->set_name(name);
  if (!a.doc_string.empty()) proto->set_doc_string(a.doc_string);
  switch (a.kind) {
    case Attribute::Kind::kFloat:
      proto->set_type(onnx::AttributeProto::FLOAT);
      proto->set_f(a.f);
      break;
    case Attribute::Kind::kInt:
      proto->set_type(onnx::AttributeProto::INT);
      proto->set_i(a.i);
      break;
    case Attribute::Kind::kString:
      proto->set_type(onnx::AttributeProto::STRING);
      proto->set_s(a.s);
      break;
    case Attribute::Kind::kTensor:
      proto->set_type(onnx::AttributeProto::TENSOR);
      *proto->mutable_t() = TensorToProto(a.t, "");
      break;
    case Attribute::Kind::kFloats:
      proto->set_type(onnx::AttributeProto::FLOATS);
      for (float f : a.floats) proto->add_floats(f);
      break;
    case Attribute::Kind::kInts:
      proto->set_type(onnx::AttributeProto::INTS);
      for (int64_t i : a.ints) proto->add_ints(i);
      break;
    case Attribute::Kind::kStrings:
      proto->set_type(onnx::AttributeProto::STRINGS);
      for (const std::string& s : a.strings) proto->add_strings(s);
      break;
    case Attribute::Kind::kOpaque:
      break;
  }
  return Status::Ok();
}

Status OperationToNode(const Operation& op, onnx::NodeProto* node) {
  node->set_op_type(op.type());
  if (!op.name().empty()) node->set_name(op.name());
  if (!op.domain().empty()) node->set_domain(op.domain());
  for (const Variable* v : op.inputs()) node->add_input(v ? v->name() : "");
  for (const Variable* v : op.outputs()) node->add_output(v ? v->name() : "");
  for (const auto& [name, attribute] : op.attributes()) {
    QALIGN_RETURN_IF_ERROR(AttributeToProto(name, attribute, op, node->add_attribute()));
  }
  if (!op.doc_string.empty()) node->set_doc_string(op.doc_string);
  return Status::Ok();
}

void ConstantToNode(const Variable& v, onnx::NodeProto* node) {
  node->set_op_type("Constant");
  if (!v.constant_node_name.empty()) node->set_name(v.constant_node_name);
  node->add_output(v.name());
  auto* value = node->add_attribute();
  value->set_name("value");
  value->set_type(onnx::AttributeProto::TENSOR);
  *value->mutable_t() = TensorToProto(*v.data(), "");
}

}  // namespace

StatusOr<onnx::ModelProto> ExportOnnxModel(const Graph& graph) {
  const ModelInfo& info = graph.info();
  onnx::ModelProto model;
  model.set_ir_version(info.ir_version);
  for (const auto& [domain, version] : info.opset_imports) {
    auto* opset = model.add_opset_import();
    opset->set_domain(domain);
    opset->set_version(version);
  }
  if (!info.producer_name.empty()) model.set_producer_name(info.producer_name);
  if (!info.producer_version.empty()) model.set_producer_version(info.producer_version);
  if (!info.domain.empty()) model.set_domain(info.domain);
  if (info.model_version != 0) model.set_model_version(info.model_version);
  if (!info.doc_string.empty()) model.set_doc_string(info.doc_string);
  for (const auto& [key, value] : info.metadata_props) {
    auto* prop = model.add_metadata_props();
    prop->set_key(key);
    prop->set_value(value);
  }
  for (const std::string& serialized : info.functions) {
    if (!model.add_functions()->ParseFromString(serialized)) {
      return InternalError("model function ", model.functions_size() - 1, " is corrupt");
    }
  }
  for (const std::string& serialized : info.training_info) {
    if (!model.add_training_info()->ParseFromString(serialized)) {
      return InternalError("model training_info ", model.training_info_size() - 1, " is corrupt");
    }
  }

  onnx::GraphProto* g = model.mutable_graph();
  if (!info.graph_name.empty()) g->set_name(info.graph_name);
  if (!info.graph_doc_string.empty()) g->set_doc_string(info.graph_doc_string);

  for (const Variable* v : graph.inputs()) VariableToValueInfo(*v, g->add_input());
  for (const std::string& name : info.initializer_inputs) {
    const Variable* v = graph.FindVariable(name);
    if (v && v->is_parameter() && !v->is_graph_input()) VariableToValueInfo(*v, g->add_input());
  }

  const std::vector<Variable*> variables = graph.variables();
  for (const Variable* v : variables) {
    if (!v->is_parameter() || v->origin() == Variable::Origin::kConstantNode) continue;
    onnx::TensorProto* tensor = g->add_initializer();
    *tensor = TensorToProto(*v->data(), v->name());
    if (!v->doc_string.empty()) tensor->set_doc_string(v->doc_string);
  }

  QALIGN_ASSIGN_OR_RETURN(std::vector<Operation*> order, graph.TopologicalOrder());
  std::unordered_set<const Variable*> emitted;
  auto emit_constant = [&](const Variable* v) {
    if (!v || !v->is_parameter() || v->origin() != Variable::Origin::kConstantNode) return;
    if (!emitted.insert(v).second) return;
    ConstantToNode(*v, g->add_node());
  };
  for (const Operation* op : order) {
    for (const Variable* v : op->inputs()) emit_constant(v);
    for (const Variable* v : op->implicit_inputs()) emit_constant(v);
    QALIGN_RETURN_IF_ERROR(OperationToNode(*op, g->add_node()));
  }
  for (const Variable* v : graph.outputs()) emit_constant(v);
  for (const Variable* v : variables) emit_constant(v);  // unused Constants, kept as read

  for (const Variable* v : graph.outputs()) VariableToValueInfo(*v, g->add_output());
  for (const Variable* v : variables) {
    if (v->has_value_info) VariableToValueInfo(*v, g->add_value_info());
  }
  return model;
}

Status SaveOnnxModel(const Graph& graph, const std::string& path,
                     const std::string& protect_input_path) {
  auto model = ExportOnnxModel(graph);
  if (!model.ok()) return Status(model.status().code(), path + ": " + model.status().message());
  if (model->ByteSizeLong() > static_cast<size_t>(std::numeric_limits<int>::max())) {
    return UnimplementedError(path,
                              ": the model is larger than 2 GiB, which a single protobuf "
                              "file cannot hold");
  }
  std::string bytes;
  if (!model->SerializeToString(&bytes))
    return InternalError(path, ": serializing the model failed");
  return WriteFileAtomically(path, bytes, protect_input_path);
}

}  // namespace qalign
