// Quantization data model: policies, schemes, states, TQCs (one per op port), alignment groups.
//
// A TQC describes how one tensor is quantized as seen from one port of one operation. A tensor
// with k consumers has one producer-side TQC and k consumer-side TQCs. TQCs that must share
// (scale, zero_point) form a group, kept as a union-find over TQC ids: merging links ROOT to
// ROOT (union by rank, path compression), and reading the params of any member reads its root's.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <limits>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/huge_pages.h"
#include "core/inline_vector.h"
#include "ir/graph.h"
#include "qalign/status.h"

namespace qalign {

// ---------------------------------------------------------------- policy and scheme

enum QuantPolicyFlag : uint32_t {
  kPerTensor = 1u << 0,
  kPerChannel = 1u << 1,
  kSymmetric = 1u << 2,
  kAsymmetric = 1u << 3,
  kLinear = 1u << 4,
  kFloating = 1u << 5,
  kPowerOf2 = 1u << 6,
};

struct QuantPolicy {
  uint32_t flags = kPerTensor | kAsymmetric | kLinear;
  bool Has(QuantPolicyFlag f) const { return (flags & f) != 0; }
  bool operator==(const QuantPolicy&) const = default;
  std::string ToString() const;  // "per_tensor|asymmetric|linear"
};
// "per_tensor", "per_channel", "symmetric", "asymmetric", "linear", "floating", "power_of_2".
const char* PolicyFlagName(QuantPolicyFlag flag);
StatusOr<QuantPolicyFlag> ParsePolicyFlag(const std::string& name);

enum class RoundingMode { kHalfEven, kHalfUp, kHalfAwayFromZero };
const char* RoundingModeName(RoundingMode mode);  // "half_even", "half_up", "half_away_from_zero"
StatusOr<RoundingMode> ParseRoundingMode(const std::string& name);
// Rounds x to an integer the way `mode` says (half_up: ties toward +infinity).
double RoundWith(RoundingMode mode, double x);

// Everything that must be identical for TQCs to share params: bit width, integer range,
// symmetry/granularity/power-of-2 flags and rounding.
struct QuantScheme {
  QuantPolicy policy;
  int num_bits = 8;
  int64_t quant_min = -128;
  int64_t quant_max = 127;
  RoundingMode rounding = RoundingMode::kHalfEven;
  bool operator==(const QuantScheme&) const = default;
  // "int8[-128,127] per_tensor|asymmetric|linear" for messages and reports.
  std::string ToString() const;
};
// Checks that a scheme is self-consistent: exactly one of per_tensor/per_channel, of
// symmetric/asymmetric and of linear/floating; quant_min < quant_max; the range fits num_bits
// and needs all of them (quant_max - quant_min >= 2^(num_bits-1)). The message names the scheme.
Status ValidateScheme(const QuantScheme& scheme);

// ---------------------------------------------------------------- states and roles

enum class QuantState : uint8_t {
  kInitial,       // no params yet
  kActivated,     // owns params (a group root with its own calibration)
  kPassive,       // quantizes with its group root's params
  kPassiveInit,   // passive, root not calibrated yet
  kOverlapped,    // merged: this port is not quantized separately
  kBaked,         // parameter tensor already quantized
  kPassiveBaked,  // passive and baked
  kFp32,          // not quantized
  kSoi,           // shape or index tensor: never quantized
};
inline constexpr int kNumQuantStates = 9;
const char* QuantStateName(QuantState state);  // "INITIAL", "ACTIVATED", ..., "FP32", "SOI"
// FP32 and SOI members never join a group.
bool IsQuantizedState(QuantState state);

enum class TensorRole : uint8_t { kActivation, kWeight, kBias, kShape };
inline constexpr int kNumTensorRoles = 4;
const char* TensorRoleName(TensorRole role);  // "activation", "weight", "bias", "shape"

// One port of one operation: input `index` or output `index`.
struct Port {
  Operation* op = nullptr;
  bool is_input = true;
  int index = 0;
  Variable* tensor = nullptr;
  std::string ToString() const;  // "input:0" / "output:1"
};

// Calibration range of one TQC's tensor (kept per member so group params can be recomputed).
// A histogram read from ranges.json stays in the RangeMap: no step after calibration reads it.
struct CalibrationStats {
  bool has_range = false;
  float min = std::numeric_limits<float>::infinity();
  float max = -std::numeric_limits<float>::infinity();
};

// ---------------------------------------------------------------- TQC

using ScaleVector = InlineVector<float, 1>;     // scale per channel, or one per tensor
using OffsetVector = InlineVector<int64_t, 1>;  // zero_point likewise

// The fields are ordered so that what the alignment pass reads of every TQC (state, role, port,
// range, scheme, whether it has params) lies in its first two 64-byte lines, and the struct is
// aligned to a line: a pass over hundreds of thousands of TQCs is bound by the lines it loads.
struct alignas(64) TensorQuantConfig {
  int32_t id = -1;  // index in its QuantConfigTable, also its union-find node
  QuantState state = QuantState::kInitial;
  TensorRole role = TensorRole::kActivation;
  Port port;
  CalibrationStats stats;
  int channel_axis = -1;  // for per-channel schemes
  QuantScheme scheme;
  // Own params; meaningful on the group root. Read group params through the table. One value
  // (per-tensor) is kept in the TQC; per-channel values are in the table's ParamArena (weights
  // the alignment pass derives) or on the heap.
  ScaleVector scale;
  OffsetVector offset;

  bool per_channel() const { return scheme.policy.Has(kPerChannel); }
  bool floating() const { return scheme.policy.Has(kFloating); }
};
using TQC = TensorQuantConfig;
static_assert(sizeof(TQC) == 128, "a TQC is two cache lines; keep hot fields in front");
// "Conv 'c1' output:0 (tensor 'x')" for messages.
std::string DescribeTqc(const TQC& tqc);

// The TQCs of one operation, one per input and output port (nullptr where a port is absent).
struct OperationQuantConfig {
  Operation* op = nullptr;
  // op->type() interned by the table (QuantConfigTable::op_type(type_id) is it), so a pass that
  // looks up rules by op type needs neither a string hash nor a read of the Operation per op.
  int32_t type_id = -1;
  std::vector<TQC*> inputs;
  std::vector<TQC*> outputs;
};

// ---------------------------------------------------------------- union-find

// Disjoint sets over dense ids. Union links root to root by rank; Find compresses paths.
class UnionFind {
 public:
  int32_t Add();                             // a new singleton; returns its id
  // Root of x, with path compression (inline: a pass over a large graph calls it per link).
  int32_t Find(int32_t x) {
    // Two passes: find the root, then point every node on the path straight at it. Iterative,
    // so a long chain (impossible with union by rank, but cheap to guard) cannot overflow.
    const int32_t root = FindNoCompress(x);
    while (parent_[static_cast<size_t>(x)] != root) {
      const int32_t next = parent_[static_cast<size_t>(x)];
      parent_[static_cast<size_t>(x)] = root;
      x = next;
    }
    return root;
  }
  int32_t FindNoCompress(int32_t x) const {  // root of x, read-only
    while (parent_[static_cast<size_t>(x)] != x) x = parent_[static_cast<size_t>(x)];
    return x;
  }
  // Merges the sets of a and b; returns false if they were already one set.
  bool Union(int32_t a, int32_t b);
  // Union of two different roots (by rank, as Union does); returns the root that stays.
  int32_t LinkRoots(int32_t ra, int32_t rb);
  bool Same(int32_t a, int32_t b) { return Find(a) == Find(b); }
  size_t size() const { return parent_.size(); }
  int32_t parent(int32_t x) const { return parent_[static_cast<size_t>(x)]; }
  uint8_t rank(int32_t x) const { return rank_[static_cast<size_t>(x)]; }

 private:
  HugeVector<int32_t> parent_;
  HugeVector<uint8_t> rank_;
};

// TQC storage in chunks that never move, so TQC pointers stay valid as the table grows. Chunk c
// holds kFirstChunk << c TQCs: ids are contiguous within a chunk (the passes sweep TQCs by id),
// a small table stays small, and a large one lives in a few chunks of huge pages.
class TqcChunks {
 public:
  TqcChunks() = default;
  TqcChunks(TqcChunks&& other) noexcept;
  TqcChunks& operator=(TqcChunks&& other) noexcept;
  ~TqcChunks();

  TensorQuantConfig* Get(size_t i) const {
    const size_t q = (i >> kFirstChunkBits) + 1;
    const int c = std::bit_width(q) - 1;
    const size_t first = ((size_t{1} << c) - 1) << kFirstChunkBits;
    return chunks_[static_cast<size_t>(c)] + (i - first);
  }
  // A default TQC in the next slot.
  TensorQuantConfig* Append();
  size_t size() const { return size_; }

 private:
  static constexpr size_t kFirstChunkBits = 8;
  void Clear();
  std::vector<TensorQuantConfig*> chunks_;
  size_t size_ = 0;
};

// ---------------------------------------------------------------- the table

// Storage for per-channel params that lives as long as its table: the alignment pass gives each
// slice of weights a Slab, which hands each weight's scales and zero points out of the arena's
// blocks (InlineVector::Adopt), instead of two heap allocations per weight. Blocks are never
// reused before the table dies; a weight whose params change again writes into the storage it has.
class ParamArena {
 public:
  // Hands out values from blocks of one arena, taken one at a time (each twice the last, up to
  // kMaxBlock), so the arena's lock is taken a few times per slab rather than per value. One slab
  // per thread.
  class Slab {
   public:
    explicit Slab(ParamArena* arena) : arena_(arena) {}
    template <typename T>
    std::span<T> Take(size_t n) {
      static_assert(alignof(T) <= 8);
      const size_t bytes = (n * sizeof(T) + 7) & ~size_t{7};
      if (static_cast<size_t>(end_ - next_) < bytes) {
        block_ = std::min(kMaxBlock, 2 * block_);
        const size_t size = std::max(block_, bytes);
        next_ = arena_->Allocate(size);
        end_ = next_ + size;
      }
      T* values = reinterpret_cast<T*>(next_);
      next_ += bytes;
      return {values, n};
    }

   private:
    static constexpr size_t kMaxBlock = size_t{2} << 20;
    ParamArena* arena_;
    std::byte* next_ = nullptr;
    std::byte* end_ = nullptr;
    size_t block_ = size_t{8} << 10;
  };

  ParamArena() = default;
  ParamArena(const ParamArena&) = delete;
  ParamArena& operator=(const ParamArena&) = delete;
  ~ParamArena();
  // A block of `bytes` (a multiple of 8), aligned to 8. Thread-safe.
  std::byte* Allocate(size_t bytes);
  // Bytes allocated so far (unsynchronized: read it when no pass is running).
  size_t bytes() const { return bytes_; }

 private:
  std::mutex mu_;
  std::vector<std::pair<std::byte*, size_t>> blocks_;
  size_t bytes_ = 0;
};

// Owns every TQC of a model and the groups they form.
class QuantConfigTable {
 public:
  TQC* Create(const Port& port, TensorRole role, const QuantScheme& scheme,
              QuantState state = QuantState::kInitial);
  TQC* Get(int32_t id) const { return tqcs_.Get(static_cast<size_t>(id)); }
  size_t size() const { return tqcs_.size(); }
  std::vector<TQC*> all() const;

  // Per-operation configs.
  OperationQuantConfig& ForOp(Operation* op);
  const OperationQuantConfig* FindOp(const Operation* op) const;
  std::vector<OperationQuantConfig*> op_configs();
  // The configs in the order they were made (DispatchQuantization makes them in graph order),
  // without building a list.
  size_t num_op_configs() const { return op_configs_.size(); }
  const OperationQuantConfig& op_config(size_t k) const { return op_configs_[k]; }
  // The op types of the configs, by OperationQuantConfig::type_id (0, 1, ... in order of first
  // appearance).
  const std::string& op_type(int32_t type_id) const {
    return op_types_[static_cast<size_t>(type_id)];
  }
  size_t num_op_types() const { return op_types_.size(); }

  // Group root of a TQC (path compression makes repeated reads O(1) amortized).
  TQC* Root(const TQC* tqc);
  // Merges the groups of a and b, ROOT to ROOT; returns false if already together. Fails
  // (InvalidArgument naming both ports) if either is FP32/SOI, floating, per-channel, or the
  // schemes differ. On success the non-root members' states become PASSIVE (or PASSIVE_INIT when
  // the root has no params yet).
  StatusOr<bool> Link(TQC* a, TQC* b);
  bool SameGroup(const TQC* a, const TQC* b);
  // Every group with its members, ordered by root id; singletons included.
  std::vector<std::vector<TQC*>> Groups();
  // The members of tqc's group (tqc included), in id order. O(group size).
  std::vector<TQC*> Members(const TQC* tqc);
  // The number of members of id's group, without building the list or reading a TQC (it walks
  // the ring of ids). O(group size).
  size_t GroupSize(int32_t id) const;

  // Group params read through the root.
  const ScaleVector& scale(const TQC* tqc);
  const OffsetVector& offset(const TQC* tqc);
  // Sets the params on the group root and marks the root ACTIVATED (a BAKED or OVERLAPPED root
  // keeps its state); PASSIVE_INIT members become PASSIVE.
  void SetGroupParams(const TQC* member, std::vector<float> scale, std::vector<int64_t> offset);

  UnionFind& union_find() { return union_find_; }
  // Where per-channel params may live (see ParamArena).
  ParamArena& param_arena() { return *param_arena_; }

  // Batch linking for a pass that keeps the TQC states in its own dense array while it links
  // (the alignment pass): merges the groups of ids a and b exactly as Link does (same union-find
  // calls, same ring splice) but reads and writes no TQC and checks nothing, so the caller must
  // have validated the pair as Link would. Returns false if already together; otherwise *root is
  // the new root and *child the old root that lost its place. The child's former members other
  // than itself are then next_member(*root), next_member of that, ... up to (excluding) *child.
  bool UnionIds(int32_t a, int32_t b, int32_t* root, int32_t* child);
  // UnionIds for two different group roots the caller has found: no finds.
  void UnionRoots(int32_t ra, int32_t rb, int32_t* root, int32_t* child);
  // The next member of id's group ring (id itself for a singleton).
  int32_t next_member(int32_t id) const { return next_member_[static_cast<size_t>(id)]; }

 private:
  // TQCs in id order (the passes sweep them by id and follow producer -> consumer links between
  // nearby ids).
  TqcChunks tqcs_;
  UnionFind union_find_;
  // Circular list of each group's members (next_member_[id]); two groups' rings are spliced in
  // O(1) on Link, so Members() and the state updates never scan the whole table.
  HugeVector<int32_t> next_member_;
  // Per-operation configs in insertion order (a deque keeps references stable as it grows),
  // found by op pointer through an open-addressing index: FindOp runs once per op port in the
  // alignment pass, so it is one hash and usually one probe, with no node allocation.
  std::deque<OperationQuantConfig> op_configs_;
  std::vector<const Operation*> op_slot_keys_;  // power-of-two size; nullptr marks a free slot
  std::vector<int32_t> op_slot_values_;         // index into op_configs_
  size_t OpSlot(const Operation* op) const;     // the slot holding op, or the free slot for it
  void GrowOpIndex();
  // Behind a pointer: the table stays movable, and the TQCs that borrow from it keep pointing at
  // the same blocks.
  std::unique_ptr<ParamArena> param_arena_ = std::make_unique<ParamArena>();
  std::vector<std::string> op_types_;                        // by type id
  std::unordered_map<std::string, int32_t> op_type_ids_;     // type -> id
};

// ---------------------------------------------------------------- params from a range

// Computes (scale, zero_point) for a float range under a scheme, the way a kernel will use them
// (x_q = clamp(round(x / scale) + zero_point, qmin, qmax), x = (x_q - zero_point) * scale):
//   every range is first widened to include 0, so that 0.0 is exactly representable
//   (it quantizes to the integer zero_point);
//   asymmetric: scale = (max - min) / (qmax - qmin), zero_point = round(qmin - min / scale),
//               clamped to [qmin, qmax];
//   symmetric:  zero_point = 0 for signed ranges (qmin < 0) and (qmax + qmin + 1) / 2 for
//               unsigned ones (128 for [0, 255]); scale = max(|min|, |max|) / h with
//               h = min(zero_point - qmin, qmax - zero_point), the largest step count on both
//               sides of zero, so +-max(|min|,|max|) is never clipped. For [-127, 127] this is
//               (qmax - qmin) / 2 = 127; for [-128, 127] and [0, 255] it is 127;
//   power-of-2: scale rounded up to the next power of two (2^ceil(log2(scale))), then the
//               asymmetric zero_point recomputed with that scale.
// A degenerate range (max == min == 0 after widening) and any scale below the smallest normal
// float get kMinScale (2^-23), so 1 / scale stays finite. Fails on NaN/Inf, min > max, an invalid scheme
// or a floating scheme (those have no integer grid).
inline constexpr float kMinScale = 1.1920928955078125e-07f;  // 2^-23
Status ComputeParams(const QuantScheme& scheme, float min, float max, float* scale,
                     int64_t* zero_point);
// ComputeParams without the checks of its inputs, for a caller that has made them once (the
// alignment pass validates each distinct scheme once, not once per group or channel): `scheme`
// passed ValidateScheme and is linear, min and max are finite and min <= max. Returns false, and
// sets nothing, when the scale is not representable (ComputeParams then names the failure).
bool ComputeParamsUnchecked(const QuantScheme& scheme, float min, float max, float* scale,
                            int64_t* zero_point);

}  // namespace qalign
