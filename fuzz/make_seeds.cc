// Writes the seed corpora of fuzz/corpus/ (run: fuzz_make_seeds fuzz/corpus). Small valid inputs
// of each format, so the fuzzers start from files that get past the first checks.
#include <onnx/onnx_pb.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "ir/npy.h"
#include "onnx/tensor_proto.h"

namespace {

void Write(const std::string& path, const std::string& bytes) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << bytes;
}

onnx::ModelProto NewModel() {
  onnx::ModelProto model;
  model.set_ir_version(8);
  auto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(13);
  return model;
}

void AddValue(google::protobuf::RepeatedPtrField<onnx::ValueInfoProto>* list,
              const std::string& name, const std::vector<int64_t>& dims) {
  auto* info = list->Add();
  info->set_name(name);
  auto* type = info->mutable_type()->mutable_tensor_type();
  type->set_elem_type(onnx::TensorProto::FLOAT);
  for (int64_t d : dims) type->mutable_shape()->add_dim()->set_dim_value(d);
}

onnx::NodeProto* AddNode(onnx::GraphProto* g, const std::string& type,
                         const std::vector<std::string>& in, const std::vector<std::string>& out) {
  auto* node = g->add_node();
  node->set_op_type(type);
  node->set_name(type + std::to_string(g->node_size()));
  for (const auto& name : in) node->add_input(name);
  for (const auto& name : out) node->add_output(name);
  return node;
}

void AddInts(onnx::NodeProto* node, const std::string& name, const std::vector<int64_t>& v) {
  auto* a = node->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t x : v) a->add_ints(x);
}

// Conv (strides, pads) -> Relu -> MaxPool -> Add with a broadcast initializer.
std::string ConvPoolModel() {
  onnx::ModelProto model = NewModel();
  auto* g = model.mutable_graph();
  g->set_name("conv_pool");
  AddValue(g->mutable_input(), "x", {1, 2, 8, 8});
  std::vector<float> w(2 * 2 * 3 * 3, 0.25f);
  qalign::Tensor weights = qalign::Tensor::FromVector<float>({2, 2, 3, 3}, w);
  *g->add_initializer() = qalign::TensorToProto(weights, "w");
  *g->add_initializer() =
      qalign::TensorToProto(qalign::Tensor::FromVector<float>({1, 2, 1, 1}, {0.5f, -1}), "b");
  auto* conv = AddNode(g, "Conv", {"x", "w"}, {"c"});
  AddInts(conv, "strides", {1, 1});
  AddInts(conv, "pads", {1, 1, 1, 1});
  AddNode(g, "Relu", {"c"}, {"r"});
  auto* pool = AddNode(g, "MaxPool", {"r"}, {"p"});
  AddInts(pool, "kernel_shape", {2, 2});
  AddInts(pool, "strides", {2, 2});
  AddNode(g, "Add", {"p", "b"}, {"y"});
  AddValue(g->mutable_output(), "y", {1, 2, 4, 4});
  return model.SerializeAsString();
}

// Shape -> Constant -> Concat -> Reshape: data propagation through shape values.
std::string ReshapeModel() {
  onnx::ModelProto model = NewModel();
  auto* g = model.mutable_graph();
  g->set_name("reshape");
  AddValue(g->mutable_input(), "x", {2, 3, 4});
  AddNode(g, "Shape", {"x"}, {"s"});
  auto* c = AddNode(g, "Constant", {}, {"minus_one"});
  auto* value = c->add_attribute();
  value->set_name("value");
  value->set_type(onnx::AttributeProto::TENSOR);
  *value->mutable_t() = qalign::TensorToProto(qalign::Tensor::FromVector<int64_t>({1}, {-1}), "");
  auto* gather = AddNode(g, "Gather", {"s", "zero"}, {"n"});
  (void)gather;
  *g->add_initializer() =
      qalign::TensorToProto(qalign::Tensor::FromVector<int64_t>({1}, {0}), "zero");
  auto* concat = AddNode(g, "Concat", {"n", "minus_one"}, {"target"});
  auto* axis = concat->add_attribute();
  axis->set_name("axis");
  axis->set_type(onnx::AttributeProto::INT);
  axis->set_i(0);
  AddNode(g, "Reshape", {"x", "target"}, {"y"});
  AddNode(g, "Softmax", {"y"}, {"z"});
  AddValue(g->mutable_output(), "z", {2, 12});
  return model.SerializeAsString();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_make_seeds CORPUS_DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  Write(dir + "/onnx_import/conv_pool.onnx", ConvPoolModel());
  Write(dir + "/onnx_import/reshape.onnx", ReshapeModel());
  using qalign::Tensor;
  Write(dir + "/npy/f32_2x3.npy",
        *qalign::SerializeNpy(Tensor::FromVector<float>({2, 3}, {1, 2, 3, 4, 5, 6})));
  Write(dir + "/npy/i64_scalar.npy", *qalign::SerializeNpy(Tensor::FromVector<int64_t>({}, {7})));
  Write(dir + "/npy/u8_4.npy",
        *qalign::SerializeNpy(Tensor::FromVector<uint8_t>({4}, {1, 2, 3, 4})));
  Write(dir + "/ranges/two.json",
        "{\"a\": {\"min\": -1.5, \"max\": 3.25}, \"b\": {\"min\": 0, \"max\": 1, \"histogram\": "
        "{\"min\": 0, \"max\": 1, \"counts\": [1, 0, 4, 2]}}}\n");
  Write(dir + "/flags/input_shape", std::string("\x00x=1,3,640,640", 15));
  Write(dir + "/flags/random",
        "\x01"
        "5?seed=3&low=-1&high=1");
  Write(dir + "/flags/image_spec",
        "\x02"
        "mean=0.5,0.5,0.5&std=0.2,0.2,0.2&scale=1/255&size=8x8");
  Write(dir + "/flags/preprocess",
        "\x03"
        "order=bgr&layout=nhwc&scale=1");
  return 0;
}
