// Fuzzes the quantize path on tiny random graphs: the input bytes choose the ops (Conv, Relu,
// Sigmoid, Tanh, Concat, Add, pooling, Reshape) and how they connect, a built-in target, cascade
// control and every tensor's range; dispatch, alignment, the weight and bias params, the QDQ plan
// and the export then run. A pass error is allowed (the report names it); what is not allowed,
// besides a crash, is a run that succeeds and breaks the contract: a rule that neither holds nor
// has a recorded requantize, or a second run that changes anything. Those abort.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "export/qdq_export.h"
#include "export/quant_plan.h"
#include "fuzz_util.h"
#include "passes/alignment/alignment_pass.h"
#include "passes/alignment_verifier.h"
#include "passes/weight_bias_params.h"
#include "quant/dispatch.h"
#include "quant/ranges.h"
#include "quant/target_profile.h"

namespace qalign {
namespace {

std::vector<TargetProfile>& Profiles() {
  static std::vector<TargetProfile> profiles;
  return profiles;
}

// A float activation tensor of the graph being built, with its channel count and spatial size.
struct Value {
  Variable* v;
  int64_t channels;
  int64_t size;
};

template <typename T>
T Must(StatusOr<T> result) {
  if (!result.ok()) std::abort();  // the builder below only makes valid graphs
  return std::move(result).value();
}

std::unique_ptr<Graph> BuildGraph(FuzzedDataProvider& in) {
  auto g = std::make_unique<Graph>();
  g->info().opset_imports[""] = 13;
  std::vector<Value> values;
  int counter = 0;
  auto fresh = [&](int64_t channels, int64_t size) {
    Variable* v = Must(g->AddVariable("t" + std::to_string(counter++)));
    v->set_dtype(DataType::kFloat);
    v->set_shape(Shape::Of({1, channels, size, size}));
    values.push_back({v, channels, size});
    return v;
  };
  g->AddInput(fresh(2, 4));
  auto param = [&](std::vector<int64_t> dims) {
    Tensor t(DataType::kFloat, dims);
    for (float& x : t.values<float>()) x = static_cast<float>(in.ConsumeIntegralInRange(-8, 8)) / 8;
    return Must(g->AddParameter("p" + std::to_string(counter++), std::move(t)));
  };
  auto pick = [&]() -> const Value& {
    return values[in.ConsumeIntegralInRange<size_t>(0, values.size() - 1)];
  };
  const int ops = in.ConsumeIntegralInRange(1, 16);
  for (int i = 0; i < ops && in.remaining_bytes() > 0; ++i) {
    const std::string name = "op" + std::to_string(i);
    const Value a = pick();
    switch (in.ConsumeIntegralInRange(0, 8)) {
      case 0: {  // Conv 1x1 to 1..4 channels, with a bias
        const int64_t c = in.ConsumeIntegralInRange<int64_t>(1, 4);
        Variable* out = fresh(c, a.size);
        Operation* op = Must(g->AddOperation(
            "Conv", name, {a.v, param({c, a.channels, 1, 1}), param({c})}, {out}));
        op->SetAttribute("kernel_shape", Attribute::Ints({1, 1}));
        break;
      }
      case 1:
      case 2: {
        static const char* kUnary[] = {"Relu", "Sigmoid", "Tanh"};
        Must(g->AddOperation(kUnary[in.ConsumeIntegralInRange(0, 2)], name, {a.v},
                             {fresh(a.channels, a.size)}));
        break;
      }
      case 3: {  // Concat of 2 or 3 values of a's spatial size (a itself if no other)
        std::vector<Variable*> inputs = {a.v};
        int64_t channels = a.channels;
        const int more = in.ConsumeIntegralInRange(1, 2);
        for (int k = 0; k < more; ++k) {
          const Value& b = pick();
          const Value& use = b.size == a.size ? b : a;
          inputs.push_back(use.v);
          channels += use.channels;
        }
        Operation* op = Must(g->AddOperation("Concat", name, inputs, {fresh(channels, a.size)}));
        op->SetAttribute("axis", Attribute::Int(1));
        break;
      }
      case 4: {  // Add of two values of one shape (a twice if none matches)
        const Value& b = pick();
        Variable* other = b.channels == a.channels && b.size == a.size ? b.v : a.v;
        Must(g->AddOperation("Add", name, {a.v, other}, {fresh(a.channels, a.size)}));
        break;
      }
      case 5: {
        Operation* op = Must(g->AddOperation(in.ConsumeBool() ? "MaxPool" : "AveragePool", name,
                                             {a.v}, {fresh(a.channels, a.size)}));
        op->SetAttribute("kernel_shape", Attribute::Ints({1, 1}));
        break;
      }
      case 6:
        Must(g->AddOperation("GlobalAveragePool", name, {a.v}, {fresh(a.channels, 1)}));
        break;
      case 7: {
        Tensor shape = Tensor::FromVector<int64_t>({4}, {1, a.channels, a.size, a.size});
        Variable* s = Must(g->AddParameter("s" + std::to_string(counter++), std::move(shape)));
        Must(g->AddOperation("Reshape", name, {a.v, s}, {fresh(a.channels, a.size)}));
        break;
      }
      default:
        if (values.size() > 1 && in.ConsumeBool()) g->AddOutput(a.v);
        break;
    }
  }
  g->AddOutput(values.back().v);
  return g;
}

// Runs the pass and the weight/bias step; false when the pass refused the graph.
bool Align(const Graph& graph, const TargetProfile& profile, const AlignmentOptions& options,
           QuantConfigTable* table, AlignmentResult* result) {
  auto aligned = RunAlignmentPass(graph, profile, options, table);
  if (!aligned.ok()) return false;
  if (!DeriveWeightAndBiasParams(table).ok()) return false;
  *result = std::move(aligned).value();
  return true;
}

}  // namespace
}  // namespace qalign

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  qalign::fuzz::Setup();
  for (const std::string& name : qalign::BuiltinTargetNames()) {
    auto profile = qalign::LoadTargetProfile(name);
    if (!profile.ok()) std::abort();  // a broken set-up, not a finding
    qalign::Profiles().push_back(*profile);
  }
  if (qalign::Profiles().empty()) std::abort();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace qalign;
  FuzzedDataProvider in(data, size);
  const TargetProfile& profile =
      Profiles()[in.ConsumeIntegralInRange<size_t>(0, Profiles().size() - 1)];
  AlignmentOptions options;
  if (in.ConsumeBool()) options.force_overlap = in.ConsumeBool();
  options.requantize_on_scheme_mismatch = in.ConsumeBool();
  std::unique_ptr<Graph> graph = BuildGraph(in);

  QuantConfigTable table;
  if (!DispatchQuantization(*graph, profile, &table).ok()) return 0;
  RangeMap ranges;
  for (Variable* v : graph->variables()) {
    if (v->is_parameter()) continue;
    TensorRange r;
    r.min = -static_cast<float>(in.ConsumeIntegralInRange(0, 64)) / 8;
    r.max = r.min + static_cast<float>(in.ConsumeIntegralInRange(1, 128)) / 8;
    ranges.ranges[v->name()] = r;
  }
  if (!ApplyRanges(ranges, &table, /*allow_missing=*/true).ok()) return 0;

  AlignmentResult result;
  if (!Align(*graph, profile, options, &table, &result)) return 0;
  // The contract: every rule holds or is relaxed by a recorded requantize edge.
  if (!VerifyAlignment(*graph, table, profile, result.requantizes, options).empty()) std::abort();
  // Idempotent: a second run links nothing and changes no param.
  AlignmentResult again;
  if (!Align(*graph, profile, options, &table, &again) || again.counters.changed) std::abort();

  auto plan = BuildQuantPlan(*graph, table, result.requantizes);
  if (!plan.ok()) return 0;
  auto model = ExportQdqModel(*graph, *plan);
  (void)model;
  return 0;
}
