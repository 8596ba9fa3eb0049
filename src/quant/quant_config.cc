// Quantization data model: names of policies/states/roles, scheme checks, the union-find, the
// TQC table with its group operations, and (scale, zero_point) from a float range.
#include "quant/quant_config.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

namespace qalign {

// ---------------------------------------------------------------- policy and scheme

namespace {

struct PolicyFlagEntry {
  QuantPolicyFlag flag;
  const char* name;
};
// One table for flag names, so ToString and parsing cannot drift apart.
constexpr PolicyFlagEntry kPolicyFlags[] = {
    {kPerTensor, "per_tensor"}, {kPerChannel, "per_channel"}, {kSymmetric, "symmetric"},
    {kAsymmetric, "asymmetric"}, {kLinear, "linear"},          {kFloating, "floating"},
    {kPowerOf2, "power_of_2"},
};

struct RoundingEntry {
  RoundingMode mode;
  const char* name;
};
constexpr RoundingEntry kRoundingModes[] = {
    {RoundingMode::kHalfEven, "half_even"},
    {RoundingMode::kHalfUp, "half_up"},
    {RoundingMode::kHalfAwayFromZero, "half_away_from_zero"},
};

}  // namespace

const char* PolicyFlagName(QuantPolicyFlag flag) {
  for (const auto& entry : kPolicyFlags) {
    if (entry.flag == flag) return entry.name;
  }
  return "unknown";
}

StatusOr<QuantPolicyFlag> ParsePolicyFlag(const std::string& name) {
  for (const auto& entry : kPolicyFlags) {
    if (name == entry.name) return entry.flag;
  }
  return InvalidArgumentError("unknown policy flag '", name,
                              "' (expected per_tensor, per_channel, symmetric, asymmetric, "
                              "linear, floating or power_of_2)");
}

std::string QuantPolicy::ToString() const {
  std::string out;
  for (const auto& entry : kPolicyFlags) {
    if (!Has(entry.flag)) continue;
    if (!out.empty()) out += '|';
    out += entry.name;
  }
  return out.empty() ? "none" : out;
}

const char* RoundingModeName(RoundingMode mode) {
  for (const auto& entry : kRoundingModes) {
    if (entry.mode == mode) return entry.name;
  }
  return "unknown";
}

StatusOr<RoundingMode> ParseRoundingMode(const std::string& name) {
  for (const auto& entry : kRoundingModes) {
    if (name == entry.name) return entry.mode;
  }
  return InvalidArgumentError("unknown rounding mode '", name,
                              "' (expected half_even, half_up or half_away_from_zero)");
}

double RoundWith(RoundingMode mode, double x) {
  switch (mode) {
    case RoundingMode::kHalfEven:
      return std::nearbyint(x);  // the default floating-point environment rounds half to even
    case RoundingMode::kHalfUp:
      return std::floor(x + 0.5);
    case RoundingMode::kHalfAwayFromZero:
      return std::round(x);
  }
  return std::nearbyint(x);
}

std::string QuantScheme::ToString() const {
  return StrCat(quant_min < 0 ? "int" : "uint", num_bits, "[", quant_min, ",", quant_max, "] ",
                policy.ToString());
}

Status ValidateScheme(const QuantScheme& scheme) {
  const QuantPolicy& p = scheme.policy;
  auto exactly_one = [&](QuantPolicyFlag a, QuantPolicyFlag b) { return p.Has(a) != p.Has(b); };
  if (!exactly_one(kPerTensor, kPerChannel)) {
    return InvalidArgumentError("scheme ", scheme.ToString(),
                                ": needs exactly one of per_tensor and per_channel");
  }
  if (!exactly_one(kSymmetric, kAsymmetric)) {
    return InvalidArgumentError("scheme ", scheme.ToString(),
                                ": needs exactly one of symmetric and asymmetric");
  }
  if (!exactly_one(kLinear, kFloating)) {
    return InvalidArgumentError("scheme ", scheme.ToString(),
                                ": needs exactly one of linear and floating");
  }
  if (scheme.num_bits < 2 || scheme.num_bits > 32) {
    return InvalidArgumentError("scheme ", scheme.ToString(), ": num_bits ", scheme.num_bits,
                                " is outside [2, 32]");
  }
  if (scheme.quant_min >= scheme.quant_max) {
    return InvalidArgumentError("scheme ", scheme.ToString(), ": quant_min ", scheme.quant_min,
                                " must be below quant_max ", scheme.quant_max);
  }
  // A signed range must fit [-2^(b-1), 2^(b-1) - 1], an unsigned one [0, 2^b - 1]; and it must
  // need all b bits, or num_bits misdescribes it (e.g. [0, 15] is a 4-bit range, not 8).
  const int64_t b = scheme.num_bits;
  const int64_t lo = scheme.quant_min < 0 ? -(int64_t{1} << (b - 1)) : 0;
  const int64_t hi = scheme.quant_min < 0 ? (int64_t{1} << (b - 1)) - 1 : (int64_t{1} << b) - 1;
  if (scheme.quant_min < lo || scheme.quant_max > hi) {
    return InvalidArgumentError("scheme ", scheme.ToString(), ": range [", scheme.quant_min, ", ",
                                scheme.quant_max, "] does not fit in ", b, " bits ([", lo, ", ",
                                hi, "])");
  }
  if (scheme.quant_max - scheme.quant_min < (int64_t{1} << (b - 1))) {
    return InvalidArgumentError("scheme ", scheme.ToString(), ": range [", scheme.quant_min, ", ",
                                scheme.quant_max, "] needs fewer than num_bits ", b, " bits");
  }
  return Status::Ok();
}

// ---------------------------------------------------------------- states and roles

const char* QuantStateName(QuantState state) {
  switch (state) {
    case QuantState::kInitial: return "INITIAL";
    case QuantState::kActivated: return "ACTIVATED";
    case QuantState::kPassive: return "PASSIVE";
    case QuantState::kPassiveInit: return "PASSIVE_INIT";
    case QuantState::kOverlapped: return "OVERLAPPED";
    case QuantState::kBaked: return "BAKED";
    case QuantState::kPassiveBaked: return "PASSIVE_BAKED";
    case QuantState::kFp32: return "FP32";
    case QuantState::kSoi: return "SOI";
  }
  return "UNKNOWN";
}

bool IsQuantizedState(QuantState state) {
  return state != QuantState::kFp32 && state != QuantState::kSoi;
}

const char* TensorRoleName(TensorRole role) {
  switch (role) {
    case TensorRole::kActivation: return "activation";
    case TensorRole::kWeight: return "weight";
    case TensorRole::kBias: return "bias";
    case TensorRole::kShape: return "shape";
  }
  return "unknown";
}

// Plain concatenation (no string stream): the alignment pass describes a TQC in a note for every
// group where rule methods conflict, which on large graphs is a large share of all groups.
std::string Port::ToString() const {
  return (is_input ? "input:" : "output:") + std::to_string(index);
}

std::string DescribeTqc(const TQC& tqc) {
  const Port& port = tqc.port;
  std::string out = port.op ? port.op->Describe() : std::string("<no op>");
  out += ' ';
  out += port.is_input ? "input:" : "output:";
  out += std::to_string(port.index);
  out += " (tensor '";
  if (port.tensor) out += port.tensor->name();
  out += "')";
  return out;
}

// ---------------------------------------------------------------- union-find

int32_t UnionFind::Add() {
  parent_.push_back(static_cast<int32_t>(parent_.size()));
  rank_.push_back(0);
  return parent_.back();
}

bool UnionFind::Union(int32_t a, int32_t b) {
  const int32_t ra = Find(a);
  const int32_t rb = Find(b);
  if (ra == rb) return false;
  LinkRoots(ra, rb);
  return true;
}

int32_t UnionFind::LinkRoots(int32_t ra, int32_t rb) {
  // Union by rank: the shallower tree hangs under the deeper root, so a tree of rank r has at
  // least 2^r nodes and every parent chain has at most log2(n) links.
  if (rank_[static_cast<size_t>(ra)] < rank_[static_cast<size_t>(rb)]) std::swap(ra, rb);
  parent_[static_cast<size_t>(rb)] = ra;  // root to root
  if (rank_[static_cast<size_t>(ra)] == rank_[static_cast<size_t>(rb)]) {
    ++rank_[static_cast<size_t>(ra)];
  }
  return ra;
}

// ---------------------------------------------------------------- the table

// ---------------------------------------------------------------- TQC storage

namespace {

// Chunk c of TqcChunks: its bytes, and whether they come from AllocateHuge.
size_t ChunkBytes(size_t c, size_t first_chunk_bits) {
  return (size_t{1} << (first_chunk_bits + c)) * sizeof(TQC);
}

}  // namespace

TqcChunks::TqcChunks(TqcChunks&& other) noexcept
    : chunks_(std::move(other.chunks_)), size_(std::exchange(other.size_, 0)) {
  other.chunks_.clear();
}

TqcChunks& TqcChunks::operator=(TqcChunks&& other) noexcept {
  if (this != &other) {
    Clear();
    chunks_ = std::move(other.chunks_);
    size_ = std::exchange(other.size_, 0);
    other.chunks_.clear();
  }
  return *this;
}

TqcChunks::~TqcChunks() { Clear(); }

void TqcChunks::Clear() {
  for (size_t i = 0; i < size_; ++i) Get(i)->~TensorQuantConfig();
  for (size_t c = 0; c < chunks_.size(); ++c) {
    const size_t bytes = ChunkBytes(c, kFirstChunkBits);
    if (bytes >= kHugeAllocationMin) {
      FreeHuge(chunks_[c], bytes);
    } else {
      ::operator delete(chunks_[c], std::align_val_t{alignof(TQC)});
    }
  }
  chunks_.clear();
  size_ = 0;
}

TensorQuantConfig* TqcChunks::Append() {
  const size_t capacity = ((size_t{1} << chunks_.size()) - 1) << kFirstChunkBits;
  if (size_ == capacity) {
    const size_t bytes = ChunkBytes(chunks_.size(), kFirstChunkBits);
    void* memory = bytes >= kHugeAllocationMin
                       ? AllocateHuge(bytes)
                       : ::operator new(bytes, std::align_val_t{alignof(TQC)});
    chunks_.push_back(static_cast<TQC*>(memory));
  }
  TQC* tqc = new (Get(size_)) TQC();
  ++size_;
  return tqc;
}

// ---------------------------------------------------------------- the table

TQC* QuantConfigTable::Create(const Port& port, TensorRole role, const QuantScheme& scheme,
                              QuantState state) {
  TQC* raw = tqcs_.Append();
  raw->id = union_find_.Add();
  raw->port = port;
  raw->role = role;
  raw->scheme = scheme;
  raw->state = state;
  next_member_.push_back(raw->id);  // a ring of one
  if (port.op != nullptr && port.index >= 0) {
    OperationQuantConfig& config = ForOp(port.op);
    std::vector<TQC*>& slots = port.is_input ? config.inputs : config.outputs;
    const size_t index = static_cast<size_t>(port.index);
    if (slots.size() <= index) slots.resize(index + 1, nullptr);
    slots[index] = raw;
  }
  return raw;
}

std::vector<TQC*> QuantConfigTable::all() const {
  std::vector<TQC*> out;
  out.reserve(tqcs_.size());
  for (size_t i = 0; i < tqcs_.size(); ++i) out.push_back(Get(static_cast<int32_t>(i)));
  return out;
}

size_t QuantConfigTable::OpSlot(const Operation* op) const {
  // Fibonacci hashing of the pointer (its low bits are alignment zeros), then linear probing.
  const size_t mask = op_slot_keys_.size() - 1;
  size_t slot = static_cast<size_t>((reinterpret_cast<uintptr_t>(op) >> 4) *
                                    uint64_t{0x9E3779B97F4A7C15} >> 32) &
                mask;
  while (op_slot_keys_[slot] != nullptr && op_slot_keys_[slot] != op) slot = (slot + 1) & mask;
  return slot;
}

void QuantConfigTable::GrowOpIndex() {
  // Keep the load factor at most 1/2 so probes stay short.
  const size_t capacity = std::max<size_t>(64, op_slot_keys_.size() * 2);
  op_slot_keys_.assign(capacity, nullptr);
  op_slot_values_.assign(capacity, -1);
  for (size_t i = 0; i < op_configs_.size(); ++i) {
    const size_t slot = OpSlot(op_configs_[i].op);
    op_slot_keys_[slot] = op_configs_[i].op;
    op_slot_values_[slot] = static_cast<int32_t>(i);
  }
}

OperationQuantConfig& QuantConfigTable::ForOp(Operation* op) {
  if ((op_configs_.size() + 1) * 2 > op_slot_keys_.size()) GrowOpIndex();
  const size_t slot = OpSlot(op);
  if (op_slot_keys_[slot] == op) {
    return op_configs_[static_cast<size_t>(op_slot_values_[slot])];
  }
  OperationQuantConfig& config = op_configs_.emplace_back();
  config.op = op;
  auto type = op_type_ids_.find(op->type());
  if (type == op_type_ids_.end()) {
    type = op_type_ids_.emplace(op->type(), static_cast<int32_t>(op_types_.size())).first;
    op_types_.push_back(op->type());
  }
  config.type_id = type->second;
  config.inputs.assign(op->inputs().size(), nullptr);
  config.outputs.assign(op->outputs().size(), nullptr);
  op_slot_keys_[slot] = op;
  op_slot_values_[slot] = static_cast<int32_t>(op_configs_.size() - 1);
  return config;
}

const OperationQuantConfig* QuantConfigTable::FindOp(const Operation* op) const {
  if (op == nullptr || op_slot_keys_.empty()) return nullptr;
  const size_t slot = OpSlot(op);
  if (op_slot_keys_[slot] != op) return nullptr;
  return &op_configs_[static_cast<size_t>(op_slot_values_[slot])];
}

std::vector<OperationQuantConfig*> QuantConfigTable::op_configs() {
  std::vector<OperationQuantConfig*> out;
  out.reserve(op_configs_.size());
  for (OperationQuantConfig& config : op_configs_) out.push_back(&config);
  return out;
}

TQC* QuantConfigTable::Root(const TQC* tqc) { return Get(union_find_.Find(tqc->id)); }

namespace {

// Why a TQC may not join a group, or "" if it may.
std::string LinkRefusal(const TQC& tqc) {
  if (!IsQuantizedState(tqc.state)) return StrCat("it is ", QuantStateName(tqc.state));
  if (tqc.floating()) return "it is floating-point quantized";
  if (tqc.per_channel()) return "it is per-channel quantized";
  return "";
}

// The state of a non-root member once its group root is `root`.
QuantState PassiveState(QuantState state, const TQC& root) {
  switch (state) {
    case QuantState::kBaked:
    case QuantState::kPassiveBaked:
      return QuantState::kPassiveBaked;
    case QuantState::kOverlapped:
      return QuantState::kOverlapped;  // not quantized separately, whoever the root is
    default:
      return root.scale.empty() ? QuantState::kPassiveInit : QuantState::kPassive;
  }
}

}  // namespace

StatusOr<bool> QuantConfigTable::Link(TQC* a, TQC* b) {
  if (a == nullptr || b == nullptr) return InvalidArgumentError("cannot link a missing TQC");
  // Validate everything before touching the union-find.
  for (const TQC* t : {a, b}) {
    const std::string why = LinkRefusal(*t);
    if (!why.empty()) {
      return InvalidArgumentError("cannot link ", DescribeTqc(*a), " with ", DescribeTqc(*b), ": ",
                                  DescribeTqc(*t), " may not join a group because ", why);
    }
  }
  if (!(a->scheme == b->scheme)) {
    return InvalidArgumentError("cannot link ", DescribeTqc(*a), " with ", DescribeTqc(*b),
                                ": schemes differ (", a->scheme.ToString(), " rounding ",
                                RoundingModeName(a->scheme.rounding), " vs ", b->scheme.ToString(),
                                " rounding ", RoundingModeName(b->scheme.rounding), ")");
  }
  const int32_t ra = union_find_.Find(a->id);
  const int32_t rb = union_find_.Find(b->id);
  if (ra == rb) return false;
  const int32_t root = union_find_.LinkRoots(ra, rb);
  const int32_t child_root = root == ra ? rb : ra;
  // The old root that lost its place becomes passive. The other members of its group only change
  // state if the new root differs from the old one in having params (PASSIVE vs PASSIVE_INIT);
  // then that group's ring is walked. Each such walk raises the rank of its members' root, so a
  // member is walked at most log2(n) + 1 times over all links; usually no walk is needed.
  const TQC& new_root = *Get(root);
  TQC* old_root = Get(child_root);
  const bool params_differ = new_root.scale.empty() != old_root->scale.empty();
  old_root->state = PassiveState(old_root->state, new_root);
  if (params_differ) {
    for (int32_t m = next_member_[static_cast<size_t>(child_root)]; m != child_root;
         m = next_member_[static_cast<size_t>(m)]) {
      TQC* member = Get(m);
      member->state = PassiveState(member->state, new_root);
    }
  }
  // Splice the two rings into one.
  std::swap(next_member_[static_cast<size_t>(root)], next_member_[static_cast<size_t>(child_root)]);
  return true;
}

bool QuantConfigTable::UnionIds(int32_t a, int32_t b, int32_t* root, int32_t* child) {
  const int32_t ra = union_find_.Find(a);
  const int32_t rb = union_find_.Find(b);
  if (ra == rb) return false;
  UnionRoots(ra, rb, root, child);
  return true;
}

void QuantConfigTable::UnionRoots(int32_t ra, int32_t rb, int32_t* root, int32_t* child) {
  *root = union_find_.LinkRoots(ra, rb);
  *child = *root == ra ? rb : ra;
  std::swap(next_member_[static_cast<size_t>(*root)], next_member_[static_cast<size_t>(*child)]);
}

bool QuantConfigTable::SameGroup(const TQC* a, const TQC* b) {
  return union_find_.Find(a->id) == union_find_.Find(b->id);
}

std::vector<std::vector<TQC*>> QuantConfigTable::Groups() {
  // Bucket by root: slot[root] is the group's index, assigned in increasing root id.
  const size_t n = tqcs_.size();
  std::vector<int32_t> root_of(n);
  std::vector<int32_t> slot(n, -1);
  for (size_t i = 0; i < n; ++i) root_of[i] = union_find_.Find(static_cast<int32_t>(i));
  int32_t groups = 0;
  for (size_t i = 0; i < n; ++i) {
    if (root_of[i] == static_cast<int32_t>(i)) slot[i] = groups++;
  }
  std::vector<std::vector<TQC*>> out(static_cast<size_t>(groups));
  for (size_t i = 0; i < n; ++i) {
    out[static_cast<size_t>(slot[static_cast<size_t>(root_of[i])])].push_back(Get(static_cast<int32_t>(i)));
  }
  return out;
}

std::vector<TQC*> QuantConfigTable::Members(const TQC* tqc) {
  std::vector<TQC*> out;
  int32_t m = tqc->id;
  do {
    out.push_back(Get(m));
    m = next_member_[static_cast<size_t>(m)];
  } while (m != tqc->id);
  std::sort(out.begin(), out.end(), [](const TQC* x, const TQC* y) { return x->id < y->id; });
  return out;
}

size_t QuantConfigTable::GroupSize(int32_t id) const {
  size_t count = 1;
  for (int32_t m = next_member(id); m != id; m = next_member(m)) ++count;
  return count;
}

ParamArena::~ParamArena() {
  for (const auto& [block, size] : blocks_) HugePageAllocator<std::byte>().deallocate(block, size);
}

std::byte* ParamArena::Allocate(size_t bytes) {
  std::byte* block = HugePageAllocator<std::byte>().allocate(bytes);
  std::lock_guard<std::mutex> lock(mu_);
  blocks_.emplace_back(block, bytes);
  bytes_ += bytes;
  return block;
}

const ScaleVector& QuantConfigTable::scale(const TQC* tqc) { return Root(tqc)->scale; }

const OffsetVector& QuantConfigTable::offset(const TQC* tqc) { return Root(tqc)->offset; }

void QuantConfigTable::SetGroupParams(const TQC* member, std::vector<float> scale,
                                      std::vector<int64_t> offset) {
  TQC* root = Root(member);
  root->scale = std::move(scale);
  root->offset = std::move(offset);
  if (root->state != QuantState::kBaked && root->state != QuantState::kOverlapped) {
    root->state = QuantState::kActivated;
  }
  // The ring is a dense array but its members lie anywhere in the table: request every member's
  // TQC before touching the first, so the cache misses overlap instead of following each other.
  int32_t m = next_member_[static_cast<size_t>(root->id)];
  while (m != root->id) {
    __builtin_prefetch(&Get(m)->state);
    m = next_member_[static_cast<size_t>(m)];
  }
  m = next_member_[static_cast<size_t>(root->id)];
  while (m != root->id) {
    TQC* t = Get(m);
    if (t->state == QuantState::kPassiveInit) t->state = QuantState::kPassive;
    m = next_member_[static_cast<size_t>(m)];
  }
}

// ---------------------------------------------------------------- params from a range

namespace {

// The body of ComputeParams once its inputs are checked. *raw_scale is the scale before the
// conversion to float, for the message when float cannot hold it (then it returns false).
bool ComputeCheckedParams(const QuantScheme& scheme, float min, float max, double* raw_scale,
                          float* scale, int64_t* zero_point) {
  // Widen to include 0 so that 0.0 (padding, ReLU's floor) quantizes without error.
  const double lo = std::min(0.0, static_cast<double>(min));
  const double hi = std::max(0.0, static_cast<double>(max));
  const double qmin = static_cast<double>(scheme.quant_min);
  const double qmax = static_cast<double>(scheme.quant_max);
  const bool symmetric = scheme.policy.Has(kSymmetric);

  double s = 0.0;
  int64_t zp = 0;
  if (symmetric) {
    // zero_point in the middle of the grid; the step count to the nearer end bounds the scale.
    zp = scheme.quant_min < 0 ? 0 : (scheme.quant_max + scheme.quant_min + 1) / 2;
    const double steps = std::min(static_cast<double>(zp) - qmin, qmax - static_cast<double>(zp));
    s = std::max(-lo, hi) / steps;
  } else {
    s = (hi - lo) / (qmax - qmin);
  }
  // Degenerate ([0, 0]) or so small that 1 / scale would overflow: use the floor.
  if (!(s >= std::numeric_limits<float>::min())) s = kMinScale;
  if (scheme.policy.Has(kPowerOf2)) s = std::exp2(std::ceil(std::log2(s)));
  if (!symmetric) {
    const double z = RoundWith(scheme.rounding, qmin - lo / s);
    zp = static_cast<int64_t>(std::clamp(z, qmin, qmax));
  }
  *raw_scale = s;
  const float s32 = static_cast<float>(s);
  if (!std::isfinite(s32) || !std::isfinite(1.0f / s32)) return false;
  *scale = s32;
  *zero_point = zp;
  return true;
}

}  // namespace

Status ComputeParams(const QuantScheme& scheme, float min, float max, float* scale,
                     int64_t* zero_point) {
  if (!std::isfinite(min) || !std::isfinite(max)) {
    return InvalidArgumentError("cannot compute quantization params of range [", min, ", ", max,
                                "]: it is not finite");
  }
  if (min > max) {
    return InvalidArgumentError("cannot compute quantization params of range [", min, ", ", max,
                                "]: min is above max");
  }
  QALIGN_RETURN_IF_ERROR(ValidateScheme(scheme));
  if (scheme.policy.Has(kFloating)) {
    return InvalidArgumentError("scheme ", scheme.ToString(),
                                " is floating-point: it has no integer scale and zero point");
  }
  double s = 0.0;
  if (!ComputeCheckedParams(scheme, min, max, &s, scale, zero_point)) {
    return InvalidArgumentError("range [", min, ", ", max, "] under ", scheme.ToString(),
                                " gives scale ", s, ", which float cannot hold");
  }
  return Status::Ok();
}

bool ComputeParamsUnchecked(const QuantScheme& scheme, float min, float max, float* scale,
                            int64_t* zero_point) {
  double s = 0.0;
  return ComputeCheckedParams(scheme, min, max, &s, scale, zero_point);
}

}  // namespace qalign
