// External data stays inside the model's folder (issue 21): absolute locations, '..' and
// symbolic links that leave the folder are refused, naming the tensor and the location.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "onnx/importer.h"
#include "onnx/onnx_proto_builder.h"

namespace qalign {
namespace {

using testing::AddInput;
using testing::AddNode;
using testing::AddOutput;
using testing::NewModel;

class ExternalDataTest : public ::testing::Test {
 protected:
  // root_/model/ holds the model; root_/secret.bin lies outside it.
  void SetUp() override {
    root_ = (std::filesystem::temp_directory_path() /
             ("qalign_external_" + std::to_string(::getpid()) + "_" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name()))
                .string();
    model_dir_ = root_ + "/model";
    std::filesystem::create_directories(model_dir_ + "/data");
    WriteFloats(root_ + "/secret.bin", {6, 6, 6, 6});
    WriteFloats(model_dir_ + "/data/w.bin", {1, 2, 3, 4});
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  static void WriteFloats(const std::string& path, const std::vector<float>& values) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(values.data()),
              static_cast<std::streamsize>(values.size() * sizeof(float)));
  }

  // y = x + w, with w [4] read from external data at `location`.
  StatusOr<std::unique_ptr<Graph>> ImportWithLocation(const std::string& location) {
    onnx::ModelProto model = NewModel(13);
    auto* g = model.mutable_graph();
    AddInput(g, "x", {"4"});
    onnx::TensorProto* w = g->add_initializer();
    w->set_name("w");
    w->set_data_type(onnx::TensorProto::FLOAT);
    w->add_dims(4);
    w->set_data_location(onnx::TensorProto::EXTERNAL);
    auto* entry = w->add_external_data();
    entry->set_key("location");
    entry->set_value(location);
    AddNode(g, "Add", {"x", "w"}, {"y"}, "add");
    AddOutput(g, "y", {"4"});
    return ImportOnnxModelFromProto(model, model_dir_, {}, model_dir_ + "/m.onnx");
  }

  void ExpectRefused(const std::string& location, const std::string& why) {
    auto graph = ImportWithLocation(location);
    ASSERT_FALSE(graph.ok()) << location;
    const std::string& message = graph.status().message();
    EXPECT_NE(message.find("tensor 'w'"), std::string::npos) << message;
    EXPECT_NE(message.find("location '" + location + "'"), std::string::npos) << message;
    EXPECT_NE(message.find(why), std::string::npos) << message;
    EXPECT_NE(message.find("inside the model's folder"), std::string::npos) << message;
  }

  std::string root_;
  std::string model_dir_;
};

TEST_F(ExternalDataTest, RelativeLocationInsideTheFolderIsRead) {
  auto graph = ImportWithLocation("data/w.bin");
  ASSERT_TRUE(graph.ok()) << graph.status().message();
  const Tensor* w = (*graph)->FindVariable("w")->data();
  EXPECT_EQ(w->data<float>()[3], 4.0f);
  ASSERT_TRUE(ImportWithLocation("./data/w.bin").ok());
}

TEST_F(ExternalDataTest, AbsoluteLocationIsRefusedEvenWhenTheFileExists) {
  ExpectRefused(root_ + "/secret.bin", "is an absolute path");
  ExpectRefused("/etc/passwd", "is an absolute path");
}

TEST_F(ExternalDataTest, DotDotIsRefused) {
  ExpectRefused("../secret.bin", "contains '..'");
  ExpectRefused("data/../../secret.bin", "contains '..'");
  ExpectRefused("data/..", "contains '..'");
}

TEST_F(ExternalDataTest, SymlinkLeavingTheFolderIsRefused) {
  std::filesystem::create_symlink(root_ + "/secret.bin", model_dir_ + "/link.bin");
  ExpectRefused("link.bin", "through a symbolic link");
  std::filesystem::create_directory_symlink(root_, model_dir_ + "/up");
  ExpectRefused("up/secret.bin", "through a symbolic link");
}

TEST_F(ExternalDataTest, SymlinkStayingInsideTheFolderIsRead) {
  std::filesystem::create_symlink(model_dir_ + "/data/w.bin", model_dir_ + "/alias.bin");
  auto graph = ImportWithLocation("alias.bin");
  ASSERT_TRUE(graph.ok()) << graph.status().message();
}

TEST_F(ExternalDataTest, NonRegularFileIsRefused) {
  ASSERT_EQ(::mkfifo((model_dir_ + "/fifo").c_str(), 0600), 0);
  auto graph = ImportWithLocation("fifo");
  ASSERT_FALSE(graph.ok());
  EXPECT_NE(graph.status().message().find("not a regular file"), std::string::npos)
      << graph.status().message();
}

}  // namespace
}  // namespace qalign
