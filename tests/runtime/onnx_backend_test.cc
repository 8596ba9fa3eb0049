// The ONNX backend node tests (Debian's libonnx-testdata, data/node): every test whose ops all
// have kernels must reproduce output_*.pb from input_*.pb. Prints the pass count and lists the
// tests skipped as unsupported (an op without a kernel, or an element type a kernel rejects).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "onnx/importer.h"
#include "onnx/tensor_proto.h"
#include "runtime/executor.h"

namespace qalign {
namespace {

namespace fs = std::filesystem;

constexpr const char* kNodeTestDir = "/usr/share/libonnx-testdata/data/node";

// Tests of supported ops that are known not to pass, each with the reason. Keep this short.
const std::map<std::string, std::string> kExpectedFailures = {
    // ConvTranspose with the output_shape attribute: the nn kernels (src/runtime/kernels/nn)
    // do not derive the pads from output_shape yet, so border values differ.
    {"test_convtranspose_output_shape", "ConvTranspose output_shape not honoured by nn kernels"},
};

// |a - b| <= atol + rtol * |b| for floats (NaN equals NaN), exact for everything else.
std::string Compare(const Tensor& got, const Tensor& want) {
  if (got.dtype() != want.dtype()) {
    return StrCat("dtype ", DataTypeName(got.dtype()), " != ", DataTypeName(want.dtype()));
  }
  if (got.shape() != want.shape()) {
    return StrCat("shape ", ShapeToString(got.shape()), " != ", ShapeToString(want.shape()));
  }
  constexpr double kTol = 1e-4;
  if (got.dtype() == DataType::kFloat || got.dtype() == DataType::kDouble) {
    auto a = got.AsFloats();
    auto b = want.AsFloats();
    if (got.dtype() == DataType::kDouble) {  // compare doubles as doubles
      const double* pa = got.data<double>();
      const double* pb = want.data<double>();
      for (int64_t i = 0; i < got.num_elements(); ++i) {
        if (std::isnan(pa[i]) && std::isnan(pb[i])) continue;
        if (!(std::abs(pa[i] - pb[i]) <= kTol + kTol * std::abs(pb[i]))) {
          return StrCat("element ", i, ": ", pa[i], " != ", pb[i]);
        }
      }
      return "";
    }
    for (size_t i = 0; i < a->size(); ++i) {
      const double x = (*a)[i], y = (*b)[i];
      if (std::isnan(x) && std::isnan(y)) continue;
      if (std::isinf(x) && x == y) continue;
      if (!(std::abs(x - y) <= kTol + kTol * std::abs(y))) {
        return StrCat("element ", i, ": ", x, " != ", y);
      }
    }
    return "";
  }
  if (!got.BitwiseEqual(want)) return "values differ";
  return "";
}

std::vector<std::string> SortedFiles(const fs::path& dir, const std::string& prefix) {
  std::vector<std::pair<int, std::string>> found;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) == 0 && name.size() > 3 && name.substr(name.size() - 3) == ".pb") {
      found.emplace_back(std::stoi(name.substr(prefix.size())), entry.path().string());
    }
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> out;
  for (auto& [index, path] : found) out.push_back(path);
  return out;
}

TEST(OnnxBackendTest, EverySupportedNodeTestPasses) {
  ASSERT_TRUE(fs::is_directory(kNodeTestDir))
      << kNodeTestDir << " is missing: install Debian's libonnx-testdata";
  std::vector<std::string> tests;
  for (const auto& entry : fs::directory_iterator(kNodeTestDir)) {
    if (entry.is_directory()) tests.push_back(entry.path().filename().string());
  }
  std::sort(tests.begin(), tests.end());

  const KernelRegistry& registry = DefaultKernelRegistry();
  int passed = 0, expected_failures = 0;
  std::vector<std::string> unsupported, failures;
  for (const std::string& test : tests) {
    const fs::path dir = fs::path(kNodeTestDir) / test;
    auto graph = ImportOnnxModel((dir / "model.onnx").string());
    if (!graph.ok()) {
      unsupported.push_back(test + " (import: " + graph.status().message() + ")");
      continue;
    }
    std::string missing;
    for (const Operation* op : (*graph)->operations()) {
      if (!registry.Find(op->domain(), op->type(), op->opset())) {
        missing = op->type() + "-" + std::to_string(op->opset());
        break;
      }
    }
    if (!missing.empty()) {
      unsupported.push_back(test + " (" + missing + ")");
      continue;
    }
    // Element types the kernels do not compute in (float16, bfloat16, strings) at the graph edges.
    for (const auto* list : {&(*graph)->inputs(), &(*graph)->outputs()}) {
      for (const Variable* v : *list) {
        const DataType t = v->dtype();
        if (t == DataType::kFloat16 || t == DataType::kBFloat16 || t == DataType::kString ||
            t == DataType::kUndefined) {
          missing = std::string("element type ") + DataTypeName(t) + " of '" + v->name() + "'";
        }
      }
    }
    if (!missing.empty()) {
      unsupported.push_back(test + " (" + missing + ")");
      continue;
    }
    const fs::path data = dir / "test_data_set_0";
    std::map<std::string, Tensor> feeds;
    std::vector<const Variable*> fed;
    for (const Variable* v : (*graph)->inputs()) {
      if (!v->is_parameter()) fed.push_back(v);
    }
    std::string problem;
    const std::vector<std::string> input_files = SortedFiles(data, "input_");
    for (size_t i = 0; i < input_files.size() && i < fed.size(); ++i) {
      auto t = ReadTensorProtoFile(input_files[i]);
      if (!t.ok()) {
        problem = "input: " + t.status().message();
        break;
      }
      feeds[fed[i]->name()] = std::move(t).value();
    }
    std::map<std::string, Tensor> results;
    if (problem.empty()) {
      auto ex = Executor::Create(**graph);
      if (!ex.ok()) {
        problem = ex.status().ToString();
      } else {
        auto run = (*ex)->Run(std::move(feeds));
        if (!run.ok()) {
          problem = run.status().ToString();
        } else {
          results = std::move(run).value();
        }
      }
    }
    if (problem.rfind("unimplemented", 0) == 0) {
      unsupported.push_back(test + " (" + problem + ")");
      continue;
    }
    if (problem.empty()) {
      const std::vector<std::string> output_files = SortedFiles(data, "output_");
      const auto& outputs = (*graph)->outputs();
      for (size_t i = 0; i < output_files.size() && problem.empty(); ++i) {
        auto want = ReadTensorProtoFile(output_files[i]);
        if (!want.ok()) {
          problem = "expected output: " + want.status().message();
        } else if (i >= outputs.size() || !results.count(outputs[i]->name())) {
          problem = "output " + std::to_string(i) + " missing";
        } else {
          const std::string diff = Compare(results.at(outputs[i]->name()), *want);
          if (!diff.empty()) problem = "output '" + outputs[i]->name() + "' " + diff;
        }
      }
    }
    if (problem.empty()) {
      ++passed;
    } else if (kExpectedFailures.count(test)) {
      ++expected_failures;
    } else {
      failures.push_back(test + ": " + problem);
    }
  }

  std::printf("ONNX backend node tests: %d passed, %zu failed, %d expected failures, %zu unsupported "
              "(of %zu)\n", passed, failures.size(), expected_failures, unsupported.size(),
              tests.size());
  std::printf("unsupported:\n");
  for (const std::string& u : unsupported) std::printf("  %s\n", u.c_str());
  for (const std::string& f : failures) ADD_FAILURE() << f;
  EXPECT_GT(passed, 300);
}

}  // namespace
}  // namespace qalign
