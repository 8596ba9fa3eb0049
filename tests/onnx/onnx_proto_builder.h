// Helpers that build small onnx::ModelProto models in code for import/export and CLI tests.
#pragma once

#include <onnx/onnx_pb.h>

#include <cstring>
#include <string>
#include <vector>

namespace qalign::testing {

// A model with one default-domain opset import.
inline onnx::ModelProto NewModel(int64_t opset = 13, int64_t ir_version = 8) {
  onnx::ModelProto model;
  model.set_ir_version(ir_version);
  auto* import = model.add_opset_import();
  import->set_domain("");
  import->set_version(opset);
  model.mutable_graph()->set_name("test");
  return model;
}

// Dims as text: "4" a fixed dim, "?" an unknown one, anything else a symbolic name.
inline void SetTensorType(onnx::ValueInfoProto* info, int32_t elem_type,
                          const std::vector<std::string>& dims) {
  auto* tensor_type = info->mutable_type()->mutable_tensor_type();
  tensor_type->set_elem_type(elem_type);
  auto* shape = tensor_type->mutable_shape();
  for (const std::string& d : dims) {
    auto* dim = shape->add_dim();
    if (d == "?") continue;
    if (!d.empty() && std::isdigit(static_cast<unsigned char>(d[0]))) {
      dim->set_dim_value(std::stoll(d));
    } else {
      dim->set_dim_param(d);
    }
  }
}

inline onnx::ValueInfoProto* AddInput(onnx::GraphProto* graph, const std::string& name,
                                      const std::vector<std::string>& dims,
                                      int32_t elem_type = onnx::TensorProto::FLOAT) {
  auto* info = graph->add_input();
  info->set_name(name);
  SetTensorType(info, elem_type, dims);
  return info;
}

inline onnx::ValueInfoProto* AddOutput(onnx::GraphProto* graph, const std::string& name,
                                       const std::vector<std::string>& dims,
                                       int32_t elem_type = onnx::TensorProto::FLOAT) {
  auto* info = graph->add_output();
  info->set_name(name);
  SetTensorType(info, elem_type, dims);
  return info;
}

inline onnx::NodeProto* AddNode(onnx::GraphProto* graph, const std::string& op_type,
                                const std::vector<std::string>& inputs,
                                const std::vector<std::string>& outputs,
                                const std::string& name = "", const std::string& domain = "") {
  auto* node = graph->add_node();
  node->set_op_type(op_type);
  if (!name.empty()) node->set_name(name);
  if (!domain.empty()) node->set_domain(domain);
  for (const auto& in : inputs) node->add_input(in);
  for (const auto& out : outputs) node->add_output(out);
  return node;
}

// A float tensor stored as raw_data.
inline onnx::TensorProto FloatTensor(const std::string& name, const std::vector<int64_t>& dims,
                                     const std::vector<float>& values) {
  onnx::TensorProto t;
  if (!name.empty()) t.set_name(name);
  t.set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : dims) t.add_dims(d);
  t.set_raw_data(
      std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float)));
  return t;
}

inline onnx::AttributeProto* AddIntAttribute(onnx::NodeProto* node, const std::string& name,
                                             int64_t v) {
  auto* a = node->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(v);
  return a;
}

}  // namespace qalign::testing
