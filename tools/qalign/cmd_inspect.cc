// `qalign inspect MODEL [--input-shape NAME=D,D,...]... [--json]`: a summary of an ONNX model.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "cli.h"
#include "flags.h"
#include "onnx/importer.h"

namespace qalign::cli {
namespace {

struct InspectFlags {
  std::string model;
  std::vector<std::string> input_shapes;
  bool json = false;
};

std::string OpsetDomainName(const std::string& domain) {
  return domain.empty() ? "ai.onnx" : domain;
}

// Op types by count, largest first, ties by name.
std::vector<std::pair<std::string, int64_t>> SortedCounts(
    const std::map<std::string, int64_t>& counts) {
  std::vector<std::pair<std::string, int64_t>> sorted(counts.begin(), counts.end());
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  return sorted;
}

int64_t TotalNodes(const ModelInfo& info) {
  int64_t total = 0;
  for (const auto& [type, count] : info.source_op_counts) total += count;
  return total;
}

// Known dims as numbers, symbolic dims by name, unknown ones as null; null for an unknown rank.
nlohmann::ordered_json ShapeJson(const Shape& shape) {
  if (!shape.rank_known) return nullptr;
  nlohmann::ordered_json dims = nlohmann::ordered_json::array();
  for (const Dim& d : shape.dims) {
    if (d.known()) {
      dims.push_back(d.value);
    } else if (!d.param.empty()) {
      dims.push_back(d.param);
    } else {
      dims.push_back(nullptr);
    }
  }
  return dims;
}

nlohmann::ordered_json VariablesJson(const std::vector<Variable*>& variables) {
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const Variable* v : variables) {
    list.push_back({{"name", v->name()},
                    {"dtype", DataTypeName(v->dtype())},
                    {"shape", ShapeJson(v->shape())},
                    {"shape_text", v->shape().ToString()}});
  }
  return list;
}

void PrintJson(const Graph& graph, const std::string& path) {
  const ModelInfo& info = graph.info();
  nlohmann::ordered_json out;
  out["file"] = path;
  out["ir_version"] = info.ir_version;
  nlohmann::ordered_json opsets = nlohmann::ordered_json::object();
  for (const auto& [domain, version] : info.opset_imports)
    opsets[OpsetDomainName(domain)] = version;
  out["opsets"] = opsets;
  out["producer"] = {{"name", info.producer_name}, {"version", info.producer_version}};
  out["nodes"] = TotalNodes(info);
  nlohmann::ordered_json counts = nlohmann::ordered_json::object();
  for (const auto& [type, count] : info.source_op_counts) counts[type] = count;
  out["op_counts"] = counts;
  out["operations_after_constant_folding"] = graph.num_operations();
  out["inputs"] = VariablesJson(graph.inputs());
  out["outputs"] = VariablesJson(graph.outputs());
  out["parameters"] = {{"count", graph.ParameterCount()}, {"bytes", graph.ParameterBytes()}};
  std::printf("%s\n", out.dump(2).c_str());
}

void PrintText(const Graph& graph, const std::string& path) {
  const ModelInfo& info = graph.info();
  std::printf("file:        %s\n", path.c_str());
  std::printf("ir version:  %lld\n", static_cast<long long>(info.ir_version));
  std::string opsets;
  for (const auto& [domain, version] : info.opset_imports) {
    opsets +=
        (opsets.empty() ? "" : ", ") + OpsetDomainName(domain) + " " + std::to_string(version);
  }
  std::printf("opsets:      %s\n", opsets.c_str());
  std::string producer = info.producer_name;
  if (!info.producer_version.empty()) producer += " " + info.producer_version;
  std::printf("producer:    %s\n", producer.empty() ? "(none)" : producer.c_str());
  std::printf("nodes:       %lld as read (%zu ops after folding Constant nodes into parameters)\n",
              static_cast<long long>(TotalNodes(info)), graph.num_operations());
  for (const auto& [type, count] : SortedCounts(info.source_op_counts)) {
    std::printf("  %-22s %lld\n", type.c_str(), static_cast<long long>(count));
  }
  auto print_variables = [](const char* title, const std::vector<Variable*>& variables) {
    std::printf("%s\n", title);
    for (const Variable* v : variables) {
      std::printf("  %s: %s %s\n", v->name().c_str(), DataTypeName(v->dtype()),
                  v->shape().ToString().c_str());
    }
  };
  print_variables("inputs:", graph.inputs());
  print_variables("outputs:", graph.outputs());
  std::printf("parameters:  %lld values, %lld bytes\n",
              static_cast<long long>(graph.ParameterCount()),
              static_cast<long long>(graph.ParameterBytes()));
}

int RunInspect(const InspectFlags& flags) {
  ImportOptions options;
  auto shapes = ParseInputShapes(flags.input_shapes);
  if (!shapes.ok()) return ReportUsageError(shapes.status().message());
  options.input_shapes = *shapes;
  auto graph = ImportOnnxModel(flags.model, options);
  if (!graph.ok()) return ReportError(graph.status());
  if (flags.json) {
    PrintJson(**graph, flags.model);
  } else {
    PrintText(**graph, flags.model);
  }
  return kExitOk;
}

}  // namespace

void AddInspectCommand(CLI::App& app, CommandContext& context) {
  auto* sub = app.add_subcommand("inspect", "Summarize an ONNX model");
  auto flags = std::make_shared<InspectFlags>();
  AddModelFlags(sub, &flags->model, &flags->input_shapes, "ONNX model file");
  sub->add_flag("--json", flags->json, "Print one JSON object instead of text");
  sub->callback([&context, flags] { context.run = [flags] { return RunInspect(*flags); }; });
}

}  // namespace qalign::cli
