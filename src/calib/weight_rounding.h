// Weight rounding optimization (AdaRound-style): per layer, chooses for each weight whether it
// rounds down or up on its grid so that the layer's output on the calibration data moves least.
//
// A linear op y = W x (Conv: x is one im2col column of the input, per group; Gemm / MatMul: one
// row of A) whose weight is quantized to W~ = s * (q - zp) errs on output row r by
// dW_r x, dW_r = W~_r - W_r. Summed over the calibration columns X, the squared error is
//   L_r = sum over columns of (dW_r x)^2 = dW_r H dW_r^T,   H = X X^T (K x K, K = C_in/group * kh *
// kw for a Conv, the reduced dim for Gemm / MatMul),
// so the Gram matrix H of the op's input (per group) is all the data the choice needs: calibration
// accumulates it through its tensor hook, from a seeded sample of the output positions. Nearest
// rounding minimises each |dW| alone, not L_r: with correlated inputs, errors of opposite sign on
// correlated weights cancel. As in AdaRound (Nagel et al., 2020), each weight gets
//   q = clamp(floor(W / s) + zp + h(V), qmin, qmax),
//   h(V) = clamp(sigmoid(V) * (zeta - gamma) + gamma, 0, 1), zeta = 1.1, gamma = -0.1,
// and Adam minimises, per row, L_r / n_r + lambda * sum (1 - |2 h - 1|^beta) over V (n_r = s^2 *
// mean diag H makes lambda scale-free; beta anneals from 20 to 2 after a warm-up without the
// regulariser, which drives every h to 0 or 1). Then h is rounded (h >= 0.5: up), and a row keeps
// nearest rounding when that is not worse on L_r, so no layer's loss ever exceeds nearest's.
//
// The weight params stay exactly as the target derived them: the chosen integers are carried by
// the graph's FP32 weights, moved onto the grid (W := s * (q - zp) where q differs from nearest;
// the export's and the simulation's nearest rounding then give q back). So that deriving the
// params again from the moved weights gives the same params (per channel or per tensor, symmetric
// or not, a reduced range), every channel's smallest and largest weights keep nearest rounding and
// their values, and a weight may only take the other rounding when its grid value stays inside
// its channel's [min, max]: the data's range, hence the params, cannot move.
#pragma once

#include <cstdint>
#include <functional>
#include <random>
#include <unordered_map>
#include <vector>

#include "calib/progress.h"
#include "ir/graph.h"
#include "ir/tensor.h"
#include "qalign/status.h"
#include "quant/quant_table.h"

namespace qalign {

struct WeightRoundingOptions {
  // Output positions (im2col columns, rows of A) sampled per layer over all calibration samples,
  // spread evenly over `samples` (0: unknown, then this many per sample).
  int64_t columns_per_layer = 8192;
  size_t samples = 0;
  int iterations = 300;
  double learning_rate = 0.03;   // Adam's step on V
  double regularization = 0.01;  // lambda, relative to a row's normalised loss
  uint64_t seed = 0;             // the position sampling
  ProgressMode progress = ProgressMode::kAuto;
  // Called after each layer with (done, total); returning false stops with kCancelled.
  std::function<bool(size_t done, size_t total)> on_layer;
};

struct WeightRoundingStats {
  int64_t optimized = 0;  // layers whose rounding was optimized
  int64_t skipped = 0;    // candidate layers left at nearest rounding (no data, unsupported input)
  int64_t changed_weights = 0;  // weights rounded the other way than nearest
  int64_t weights = 0;          // weights of the optimized layers
  // Sum over the optimized layers of the mean squared output error per output value on the
  // sampled columns, with nearest rounding and with the chosen rounding.
  double loss_nearest = 0.0;
  double loss_optimized = 0.0;
};

// One block of rows sharing a Gram matrix (a Conv group, or a whole Gemm / MatMul), as the
// optimization sees it: element (r, j) of `weights` is row r's weight on input j.
struct RoundingProblem {
  int64_t rows = 0;
  int64_t k = 0;
  std::vector<double> gram;          // k x k, row-major
  std::vector<float> weights;        // rows x k
  std::vector<float> scales;         // rows x k: each weight's scale
  std::vector<int64_t> zero_points;  // rows x k
  int64_t quant_min = -128;
  int64_t quant_max = 127;
  std::vector<uint8_t> fixed;  // rows x k: 1 keeps nearest rounding (empty: none fixed)
};

// Nearest rounding as the export does it (QuantizeValue: half to even, then clamped).
std::vector<int64_t> NearestRounding(const RoundingProblem& problem);
// sum over rows of dW_r H dW_r^T for integers `q` (rows x k).
double ReconstructionLoss(const RoundingProblem& problem, const std::vector<int64_t>& q);
// The optimized integers (rows x k): each differs from nearest by at most one step and lies in
// [quant_min, quant_max]; each row's loss is at most nearest's.
std::vector<int64_t> OptimizeRounding(const RoundingProblem& problem,
                                      const WeightRoundingOptions& options);

class WeightRounding {
 public:
  // The Conv (2-D, any group), Gemm and MatMul ops of `graph` whose weight (input 1) is a float
  // parameter read by that op alone.
  WeightRounding(const Graph& graph, WeightRoundingOptions options);

  // The input tensors to pass to Observe (input 0 of every candidate op).
  std::vector<const Variable*> ObservedInputs() const;
  // A calibration sample's value of `variable`: adds its sampled columns to the Gram matrices of
  // every op reading it.
  void Observe(const Variable& variable, const Tensor& value);

  // Restores every candidate's FP32 weight, then optimizes the rounding of each one whose weight
  // is quantized (linear, with params) under the params in `table`, and moves its weights onto
  // the grid. Runs again with another table of the same graph (mixed precision's trials) give
  // the same result; a layer whose params did not change is not optimized again.
  StatusOr<WeightRoundingStats> Apply(QuantConfigTable* table);

  // The FP32 weight of `op` as given (Observe's caller may have changed the graph's since).
  const std::vector<float>* OriginalWeight(const Operation* op) const;

 private:
  struct Layer {
    Operation* op = nullptr;
    int64_t groups = 1;
    int64_t rows = 0;             // output rows (C_out, N)
    int64_t k = 0;                // inputs per row (per group)
    std::vector<double> gram;     // groups x k x k
    double columns = 0.0;         // columns accumulated (per group)
    Status error;                 // an input the sums cannot use; the layer is then skipped
    std::vector<float> original;  // the FP32 weight
    std::mt19937_64 rng;
    // The last result: the params it was optimized for and the integers chosen.
    std::vector<float> scales;
    std::vector<int64_t> zero_points;
    std::vector<int64_t> chosen;
    double loss_nearest = 0.0, loss_optimized = 0.0;
    int64_t changed = 0;
  };
  Status Accumulate(Layer* layer, const Tensor& value);
  Status RoundLayer(Layer* layer, QuantConfigTable* table, WeightRoundingStats* stats);
  // Flat index in the weight tensor of row r's weight on input j (j within the row's group).
  int64_t WeightIndex(const Layer& layer, int64_t r, int64_t j) const;

  WeightRoundingOptions options_;
  std::vector<Layer> layers_;
  std::unordered_multimap<const Variable*, size_t> layers_by_input_;
};

}  // namespace qalign
