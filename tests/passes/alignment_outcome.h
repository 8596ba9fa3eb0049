// A textual dump of everything the alignment pass decides, and the golden-file comparison the
// golden tests make with it: any change in a group, a param, a state, a root, a requantize edge or
// a note shows up as a line of diff.
#pragma once

#include <gtest/gtest.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "passes/alignment/alignment_pass.h"
#include "passes/weight_bias_params.h"
#include "quant/quant_config.h"

namespace qalign::testing {

inline std::string Float9(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.9g", v);
  return buffer;
}

// Params as read through the group root. One value is printed as it is; per-channel values as
// their count, extremes and an FNV-1a hash of their bits, so a golden file stays readable and
// still changes when any channel does.
template <typename Scales, typename ZeroPoints>
std::string ParamsText(const Scales& scales, const ZeroPoints& zero_points) {
  if (scales.size() == 0 && zero_points.size() == 0) return "-";
  if (scales.size() == 1 && zero_points.size() == 1) {
    return Float9(scales[0]) + "/" + std::to_string(zero_points[0]);
  }
  uint64_t hash = 1469598103934665603ull;
  auto mix = [&hash](const void* data, size_t bytes) {
    const unsigned char* p = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i < bytes; ++i) hash = (hash ^ p[i]) * 1099511628211ull;
  };
  float lo = 0.0f, hi = 0.0f;
  for (size_t i = 0; i < scales.size(); ++i) {
    const float s = scales[i];
    mix(&s, sizeof(s));
    lo = i == 0 ? s : std::min(lo, s);
    hi = i == 0 ? s : std::max(hi, s);
  }
  for (size_t i = 0; i < zero_points.size(); ++i) {
    const int64_t z = zero_points[i];
    mix(&z, sizeof(z));
  }
  char buffer[96];
  std::snprintf(buffer, sizeof(buffer), "n=%zu/%zu scale=[%s,%s] hash=%016" PRIx64,
                static_cast<size_t>(scales.size()), static_cast<size_t>(zero_points.size()),
                Float9(lo).c_str(), Float9(hi).c_str(), hash);
  return buffer;
}

inline std::string TqcName(const TQC& t) {
  return t.port.op->name() + "/" + t.port.ToString();
}

// The alignment step as the pipeline runs it: the pass, then weight and bias params.
struct AlignmentRun {
  AlignmentResult result;
  DerivedParamsStats derived;
  bool changed() const { return result.counters.changed || derived.changed; }
};
inline StatusOr<AlignmentRun> RunAlignmentStep(const Graph& graph, const TargetProfile& profile,
                                               const AlignmentOptions& options,
                                               QuantConfigTable* table) {
  AlignmentRun run;
  QALIGN_ASSIGN_OR_RETURN(run.result, RunAlignmentPass(graph, profile, options, table));
  QALIGN_ASSIGN_OR_RETURN(run.derived, DeriveWeightAndBiasParams(table));
  return run;
}

// The step's full outcome: counters, every TQC (id, port, tensor, role, state, root, scheme, own
// calibrated range, group params), the reported groups with method and reason, the requantize
// edges with reasons, and the notes.
inline std::string PrintAlignmentOutcome(QuantConfigTable& table, const AlignmentRun& run) {
  std::ostringstream out;
  const AlignmentResult& result = run.result;
  const AlignmentCounters& c = result.counters;
  out << "counters rule_ops=" << c.rule_ops << " constraints=" << c.constraints
      << " links_made=" << c.links_made << " groups=" << c.groups << " members=" << c.members
      << " requantizes=" << c.requantizes << " conflicts=" << c.conflicts
      << " method_conflicts=" << c.method_conflicts << " fixed_outputs=" << c.fixed_outputs
      << " params_set=" << c.params_set << " params_changed=" << c.params_changed
      << " groups_without_range=" << c.groups_without_range << " weights=" << run.derived.weights
      << " biases=" << run.derived.biases << " changed=" << run.changed() << "\n";
  for (size_t i = 0; i < table.size(); ++i) {
    TQC* t = table.Get(static_cast<int32_t>(i));
    const TQC* root = table.Root(t);
    out << "tqc " << t->id << " " << TqcName(*t) << " tensor=" << t->port.tensor->name()
        << " " << TensorRoleName(t->role) << " " << QuantStateName(t->state)
        << " root=" << root->id << " " << t->scheme.ToString();
    if (t->stats.has_range) {
      out << " range=[" << Float9(t->stats.min) << "," << Float9(t->stats.max) << "]";
    }
    out << " params=" << ParamsText(table.scale(t), table.zero_point(t)) << "\n";
  }
  for (const AlignmentGroup& g : result.groups) {
    out << "group " << g.id << " method=" << g.method << " tensors=" << g.distinct_tensors
        << " members=" << g.members.size() << " reason=" << g.reason << "\n";
    for (const TQC* m : g.members) out << "  member " << m->id << " " << TqcName(*m) << "\n";
  }
  for (const RequantizeEdge& e : result.requantizes) {
    out << "requantize " << e.tensor->name() << " " << (e.producer ? e.producer->name() : "-")
        << " -> " << (e.consumer ? e.consumer->name() : "-") << ": " << e.reason << "\n";
  }
  for (const std::string& note : result.notes) out << "note " << note << "\n";
  return out.str();
}

// Compares `actual` with tests/passes/testdata/alignment/<name>.golden. With QALIGN_UPDATE_GOLDEN=1
// in the environment it writes the file instead (then review the diff and say why in the commit).
inline void ExpectMatchesGolden(const std::string& name, const std::string& actual) {
  const std::filesystem::path path = std::filesystem::path(QALIGN_SOURCE_DIR) / "tests" /
                                     "passes" / "testdata" / "alignment" / (name + ".golden");
  const char* update = std::getenv("QALIGN_UPDATE_GOLDEN");
  if (update != nullptr && std::string(update) == "1") {
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << actual;
    return;
  }
  std::ifstream in(path, std::ios::binary);
  ASSERT_TRUE(in.good()) << path << " is missing: run with QALIGN_UPDATE_GOLDEN=1 to write it";
  std::stringstream expected;
  expected << in.rdbuf();
  if (expected.str() == actual) return;
  // Name the first line that differs, so a failure reads without a diff tool.
  std::istringstream a(actual), e(expected.str());
  std::string la, le;
  for (int line = 1;; ++line) {
    const bool more_a = static_cast<bool>(std::getline(a, la));
    const bool more_e = static_cast<bool>(std::getline(e, le));
    if (!more_a && !more_e) break;
    if (!more_a || !more_e || la != le) {
      ADD_FAILURE() << path << ":" << line << " differs\n  golden: " << (more_e ? le : "<end>")
                    << "\n  actual: " << (more_a ? la : "<end>");
      return;
    }
  }
  ADD_FAILURE() << path << " differs";
}

}  // namespace qalign::testing
