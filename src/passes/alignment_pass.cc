// The quantization alignment pass: constraints, cascade control, groups, params, derived params.
#include "passes/alignment_pass.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <numeric>
#include <span>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include "core/file_util.h"
#include "core/huge_pages.h"
#include "core/thread_pool.h"
#include "core/logging.h"

namespace qalign {

// ---------------------------------------------------------------- options and rules

Status ParseAlignAssignment(const std::string& flag, std::map<std::string, AlignMethod>* out) {
  const size_t eq = flag.rfind('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == flag.size()) {
    return InvalidArgumentError("expected NAME=METHOD, got '", flag, "'");
  }
  auto method = ParseAlignMethod(flag.substr(eq + 1));
  if (!method.ok()) return InvalidArgumentError("'", flag, "': ", method.status().message());
  (*out)[flag.substr(0, eq)] = *method;
  return Status::Ok();
}

Status LoadAlignConfig(const std::string& path, AlignmentOptions* options) {
  using json = nlohmann::json;
  QALIGN_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  json root = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded() || !root.is_object()) {
    return InvalidArgumentError(path, ": expected a JSON object {\"op_types\", \"nodes\", ",
                                "\"force_overlap\", \"requantize_on_scheme_mismatch\"}");
  }
  for (const auto& [key, value] : root.items()) {
    if (key == "op_types" || key == "nodes") {
      if (!value.is_object()) {
        return InvalidArgumentError(path, ": \"", key, "\" must map names to methods");
      }
      auto& target = key == "op_types" ? options->method_by_op_type : options->method_by_node;
      for (const auto& [name, method] : value.items()) {
        if (!method.is_string()) {
          return InvalidArgumentError(path, ": \"", key, ".", name, "\" must be a method name");
        }
        auto parsed = ParseAlignMethod(method.get<std::string>());
        if (!parsed.ok()) {
          return InvalidArgumentError(path, ": \"", key, ".", name, "\": ",
                                      parsed.status().message());
        }
        target[name] = *parsed;
      }
    } else if (key == "force_overlap" || key == "requantize_on_scheme_mismatch") {
      if (!value.is_boolean()) {
        return InvalidArgumentError(path, ": \"", key, "\" must be true or false");
      }
      if (key == "force_overlap") {
        options->force_overlap = value.get<bool>();
      } else {
        options->requantize_on_scheme_mismatch = value.get<bool>();
      }
    } else {
      return InvalidArgumentError(path, ": unknown key \"", key,
                                  "\" (expected op_types, nodes, force_overlap, ",
                                  "requantize_on_scheme_mismatch)");
    }
  }
  return Status::Ok();
}

std::optional<RuleKind> DefaultRuleKind(const std::string& op_type) {
  static const std::unordered_map<std::string, RuleKind> kKinds = {
      {"Concat", RuleKind::kShareInputsAndOutput},
      {"Add", RuleKind::kShareInputs},
      {"Sub", RuleKind::kShareInputs},
      {"Mul", RuleKind::kShareInputs},
      {"Sum", RuleKind::kShareInputs},
      {"Max", RuleKind::kShareInputs},
      {"Min", RuleKind::kShareInputs},
      {"Mean", RuleKind::kShareInputs},
      // Pooling and data movement: the values pass through, so input and output share.
      // (Each name is its own element: the original list lost Slice and Dropout to a missing
      // comma, see the design doc.)
      {"AveragePool", RuleKind::kShareInputOutput},
      {"GlobalAveragePool", RuleKind::kShareInputOutput},
      {"MaxPool", RuleKind::kShareInputOutput},
      {"GlobalMaxPool", RuleKind::kShareInputOutput},
      {"Reshape", RuleKind::kShareInputOutput},
      {"Transpose", RuleKind::kShareInputOutput},
      {"Squeeze", RuleKind::kShareInputOutput},
      {"Unsqueeze", RuleKind::kShareInputOutput},
      {"Flatten", RuleKind::kShareInputOutput},
      {"Slice", RuleKind::kShareInputOutput},
      {"Dropout", RuleKind::kShareInputOutput},
      {"Split", RuleKind::kShareInputOutput},
      {"Pad", RuleKind::kShareInputOutput},
      {"Gather", RuleKind::kShareInputOutput},
      {"Resize", RuleKind::kShareInputOutput},
      {"Upsample", RuleKind::kShareInputOutput},
      {"SpaceToDepth", RuleKind::kShareInputOutput},
      {"DepthToSpace", RuleKind::kShareInputOutput},
      {"Identity", RuleKind::kShareInputOutput},
      {"Expand", RuleKind::kShareInputOutput},
      {"Tile", RuleKind::kShareInputOutput},
  };
  auto it = kKinds.find(op_type);
  if (it == kKinds.end()) return std::nullopt;
  return it->second;
}

StatusOr<EffectiveRule> ResolveRule(const Operation& op, const TargetProfile& profile,
                                    const AlignmentOptions& options) {
  EffectiveRule rule;
  const AlignmentRule* base = profile.FindRule(op.type());
  if (base != nullptr) {
    rule.present = true;
    rule.kind = base->kind;
    rule.method = base->method;
    rule.fixed_scale = base->fixed_scale;
    rule.fixed_zero_point = base->fixed_zero_point;
    // Fixed ranges are what the kernel computes; no override can change them.
    if (base->kind == RuleKind::kFixedOutput) return rule;
  }
  const AlignMethod* override_method = nullptr;
  RuleSource source = RuleSource::kProfile;
  if (auto it = options.method_by_node.find(op.name()); it != options.method_by_node.end()) {
    override_method = &it->second;
    source = RuleSource::kNodeOverride;
  } else if (auto it2 = options.method_by_op_type.find(op.type());
             it2 != options.method_by_op_type.end()) {
    override_method = &it2->second;
    source = RuleSource::kOpTypeOverride;
  }
  if (override_method == nullptr) return rule;
  if (!rule.present) {
    std::optional<RuleKind> kind = DefaultRuleKind(op.type());
    if (!kind) {
      return InvalidArgumentError("cannot align ", op.Describe(), ": target '", profile.name,
                                  "' has no rule for op type ", op.type(),
                                  " and qalign knows no sharing kind for it; add a rule to the profile");
    }
    rule.present = true;
    rule.kind = *kind;
  }
  rule.method = *override_method;
  rule.source = source;
  return rule;
}

bool IsJoinable(const TQC& tqc) {
  switch (tqc.state) {
    case QuantState::kFp32:
    case QuantState::kSoi:
    case QuantState::kOverlapped:
      return false;
    default:
      break;
  }
  if (tqc.floating() || tqc.per_channel()) return false;
  return tqc.role == TensorRole::kActivation || tqc.role == TensorRole::kWeight;
}

void AppendRuleMembers(const OperationQuantConfig& config, RuleKind kind,
                       std::vector<TQC*>* members) {
  auto add = [members](TQC* t) {
    if (t != nullptr && IsJoinable(*t)) members->push_back(t);
  };
  switch (kind) {
    case RuleKind::kShareInputsAndOutput:
      for (TQC* t : config.inputs) add(t);
      for (TQC* t : config.outputs) add(t);
      break;
    case RuleKind::kShareInputOutput:
      if (!config.inputs.empty()) add(config.inputs[0]);
      for (TQC* t : config.outputs) add(t);
      break;
    case RuleKind::kShareInputs:
      for (TQC* t : config.inputs) add(t);
      break;
    case RuleKind::kFixedOutput:
      break;
  }
}

std::vector<TQC*> RuleMembers(const OperationQuantConfig& config, RuleKind kind) {
  std::vector<TQC*> members;
  AppendRuleMembers(config, kind, &members);
  return members;
}

// ---------------------------------------------------------------- the pass

namespace {

// "Concat 'cat1'", like Operation::Describe() but without a string stream.
std::string OpLabel(const Operation& op) { return op.type() + " '" + op.name() + "'"; }

// Appends op.Describe() to *out without building a temporary string.
void AppendDescribe(std::string* out, const Operation& op) {
  *out += op.type();
  if (op.name().empty()) {
    *out += " (unnamed)";
  } else {
    *out += " '";
    *out += op.name();
    *out += '\'';
  }
}

// Appends DescribeTqc(tqc) to *out without building temporary strings.
void AppendDescribeTqc(std::string* out, const TQC& tqc) {
  const Port& port = tqc.port;
  if (port.op != nullptr) {
    AppendDescribe(out, *port.op);
  } else {
    *out += "<no op>";
  }
  *out += port.is_input ? " input:" : " output:";
  *out += std::to_string(port.index);
  *out += " (tensor '";
  if (port.tensor != nullptr) *out += port.tensor->name();
  *out += "')";
}

bool IsBaked(QuantState s) { return s == QuantState::kBaked || s == QuantState::kPassiveBaked; }

// Whether setting a group root's params changes its state (to ACTIVATED): a root already
// ACTIVATED, BAKED or OVERLAPPED keeps its state.
bool SettingParamsChangesState(QuantState s) {
  return s != QuantState::kActivated && !IsBaked(s) && s != QuantState::kOverlapped;
}

// Ops that read only a tensor's shape: they do not see its values, so they do not count as
// consumers for cascade control.
bool ReadsOnlyShape(const Operation& op) { return op.type() == "Shape" || op.type() == "Size"; }

// Canonical order of ports: op name, inputs before outputs, index.
bool PortLess(const TQC* a, const TQC* b) {
  const int c = a->port.op->name().compare(b->port.op->name());
  if (c != 0) return c < 0;
  if (a->port.is_input != b->port.is_input) return a->port.is_input;
  return a->port.index < b->port.index;
}

// A value a group is pinned to: a fixed-range rule's params or a BAKED member's params.
struct Pin {
  float scale = 0.0f;
  int64_t zero_point = 0;
  bool fixed = false;  // fixed-range rule (else BAKED member)
  const TQC* source = nullptr;
  bool Same(const Pin& o) const { return scale == o.scale && zero_point == o.zero_point; }
};

// One constraint: the TQCs with ids a and b must share params. 12 bytes: a graph has about as
// many constraints as TQCs, and the hot loops read only the ids.
struct Constraint {
  int32_t a = -1;
  int32_t b = -1;
  int32_t rule = -1;  // index of the rule instance that ties them; -1 for a default edge
};

// What the pass reads and writes of every TQC, in one dense array (16 bytes per TQC) so the
// later steps do not walk the TQC objects again. The TQC states live here from the gather until
// FlushStates writes the changed ones back.
struct TqcInfo {
  enum Flag : uint8_t {
    kJoinable = 1 << 0,
    kHasRange = 1 << 1,
    kIsInput = 1 << 2,    // a consumer-side port
    kHasParams = 1 << 3,  // the TQC holds params (its scale is not empty)
    kDirty = 1 << 4,      // the state changed
    kRelaxed = 1 << 5,    // cascade control keeps it out of its producer's group
    kParamsSet = 1 << 6,  // a group root whose params the pass set
  };
  float min = 0.0f;     // MemberRange of a joinable TQC, when kHasRange
  float max = 0.0f;
  int32_t pin = -1;     // index of its Pin, or -1
  uint16_t scheme = 0;  // index into the pass's list of distinct schemes
  QuantState state = QuantState::kInitial;
  uint8_t flags = 0;
  bool joinable() const { return (flags & kJoinable) != 0; }
  bool has_range() const { return (flags & kHasRange) != 0; }
  bool is_input() const { return (flags & kIsInput) != 0; }
  bool has_params() const { return (flags & kHasParams) != 0; }
  bool relaxed() const { return (flags & kRelaxed) != 0; }
};
static_assert(sizeof(TqcInfo) == 16);

// Sort key for conflict resolution: rule ties first (by op name and port), then default edges (by
// tensor and consumer port), so a conflict drops the same constraint whatever the storage order.
// A constraint with its TQCs and rule op resolved, for the rare steps that name them.
struct NamedConstraint {
  TQC* a = nullptr;
  TQC* b = nullptr;
  Operation* rule_op = nullptr;  // nullptr for a default edge
  Constraint ids;
};

bool ConstraintLess(const NamedConstraint& x, const NamedConstraint& y) {
  const bool xr = x.rule_op != nullptr, yr = y.rule_op != nullptr;
  if (xr != yr) return xr;
  if (xr) {
    const int c = x.rule_op->name().compare(y.rule_op->name());
    if (c != 0) return c < 0;
    return PortLess(x.b, y.b);
  }
  const int c = x.b->port.tensor->name().compare(y.b->port.tensor->name());
  if (c != 0) return c < 0;
  return PortLess(x.b, y.b);
}

// A minimal union-find over TQC ids used to look ahead at the partition before linking the table.
class ScratchSets {
 public:
  explicit ScratchSets(size_t n) : parent_(n) { std::iota(parent_.begin(), parent_.end(), 0); }
  int32_t Find(int32_t x) {
    while (parent_[x] != x) {
      parent_[x] = parent_[parent_[x]];
      x = parent_[x];
    }
    return x;
  }
  void Union(int32_t a, int32_t b) {
    a = Find(a);
    b = Find(b);
    if (a != b) parent_[std::max(a, b)] = std::min(a, b);
  }
  void Reset(int32_t x) { parent_[x] = x; }

 private:
  HugeVector<int32_t> parent_;
};

// One op whose rule ties ports. Its members live in one flat array shared by all rules
// (one allocation for the whole graph instead of one per op).
struct RuleInstance {
  Operation* op = nullptr;
  const OperationQuantConfig* config = nullptr;
  const EffectiveRule* rule = nullptr;  // shared by the ops of one type (see RuleOf)
  uint32_t first = 0;  // member ids are rule_members_[first, first + count)
  uint32_t count = 0;
};

// A consumer-side TQC that may join a group, with the producer-side TQC of its tensor (-1 when
// the tensor has no quantized producer port), in graph order.
struct InputEdge {
  uint32_t op = 0;  // index in graph order
  int32_t port = 0;  // the op's input index
  int32_t consumer = -1;
  int32_t producer = -1;
};

// Tensor -> id of its producer-side TQC: open addressing over the Variable pointers, so finding
// a consumer's producer reads neither the Variable nor the producing op. A slot holds the key and
// its value together: a lookup is one miss, not two.
class TensorIndex {
 public:
  void Build(const HugeVector<std::pair<const Variable*, int32_t>>& entries) {
    size_t capacity = 64;
    while (capacity < 2 * entries.size()) capacity <<= 1;  // load factor at most 1/2
    slots_.assign(capacity, Entry{});
    // The slots are hit at random in an array larger than the cache: each one is requested a few
    // dozen entries before it is filled, so the misses overlap.
    for (size_t k = 0; k < entries.size(); ++k) {
      if (k + kAheadSlots < entries.size()) Prefetch(entries[k + kAheadSlots].first);
      const auto& [v, id] = entries[k];
      Entry& e = slots_[SlotOf(v)];
      e.key = v;
      e.value = id;  // a later TQC for the same port wins, as in the op's config
    }
  }
  void Prefetch(const Variable* v) const {
    if (!slots_.empty()) __builtin_prefetch(&slots_[Hash(v) & (slots_.size() - 1)]);
  }
  int32_t Find(const Variable* v) const {
    if (slots_.empty()) return -1;
    const Entry& e = slots_[SlotOf(v)];
    return e.key == v ? e.value : -1;
  }

 private:
  static constexpr size_t kAheadSlots = 32;
  struct Entry {
    const Variable* key = nullptr;
    int32_t value = -1;
  };
  static size_t Hash(const Variable* v) {
    return static_cast<size_t>((reinterpret_cast<uintptr_t>(v) >> 4) *
                               uint64_t{0x9E3779B97F4A7C15} >> 32);
  }
  size_t SlotOf(const Variable* v) const {
    const size_t mask = slots_.size() - 1;
    size_t slot = Hash(v) & mask;
    while (slots_[slot].key != nullptr && slots_[slot].key != v) slot = (slot + 1) & mask;
    return slot;
  }
  HugeVector<Entry> slots_;
};

// A per-channel weight whose params the pass derives from its data, with what the gather read of
// its TQC, so the derivation step reads the TQC only to write the params.
struct WeightItem {
  const Variable* tensor = nullptr;
  int32_t id = -1;
  int channel_axis = -1;
  uint16_t scheme = 0;  // scheme class
};

// Everything the pass knows about one final group while choosing its params.
// (One per group of the whole graph, singletons included: kept small; the reason a reported group
// gives is kept apart, and only when the group list is built.)
struct GroupState {
  int32_t root = -1;
  // Indices of the rule instances touching this group: group_rules_[rules_first, + rules_count).
  uint32_t rules_first = 0;
  uint32_t rules_count = 0;
  const Pin* fixed_pin = nullptr;
  const Pin* baked_pin = nullptr;
  bool has_range = false;
  float min = 0.0f;
  float max = 0.0f;
  // Set only for groups a rule formed (the reported ones).
  const char* method = "";
};

int MethodPriority(AlignMethod m) {
  switch (m) {
    case AlignMethod::kLarge: return 4;
    case AlignMethod::kOptimal: return 3;  // computed as large for now (see ChooseSharedParams)
    case AlignMethod::kOutput: return 2;
    case AlignMethod::kInput: return 1;
    case AlignMethod::kNone: return 0;
  }
  return 0;
}

const char* SourceLabel(RuleSource s) {
  switch (s) {
    case RuleSource::kProfile: return "target rule";
    case RuleSource::kOpTypeOverride: return "op-type override";
    case RuleSource::kNodeOverride: return "node override";
  }
  return "?";
}

const char* KindLabel(RuleKind k) {
  switch (k) {
    case RuleKind::kShareInputsAndOutput: return "inputs and output share";
    case RuleKind::kShareInputOutput: return "input and output share";
    case RuleKind::kShareInputs: return "inputs share";
    case RuleKind::kFixedOutput: return "fixed output";
  }
  return "?";
}

// Appends the reason a group's deciding rules give, as the report shows it: the first rule of
// `sorted` (the deciding rules sorted by op name), how many more there are, and when their
// methods differ (`mixed`) the conflict and how it was resolved.
void AppendRuleReason(std::string* out, std::span<const AlignmentNotes::ConflictRule> sorted,
                      AlignMethod chosen, bool mixed) {
  const AlignmentNotes::ConflictRule& first = sorted.front();
  *out += first.op->type();
  *out += " '";
  *out += first.op->name();
  *out += "' ";
  *out += SourceLabel(first.source);
  *out += " (";
  *out += KindLabel(first.kind);
  *out += ')';
  if (sorted.size() > 1) {
    *out += " and ";
    *out += std::to_string(sorted.size() - 1);
    *out += " more";
  }
  if (!mixed) return;
  *out += "; methods conflict (";
  for (size_t k = 0; k < sorted.size(); ++k) {
    if (k > 0) *out += ", ";
    AppendDescribe(out, *sorted[k].op);
    *out += " wants ";
    *out += AlignMethodName(sorted[k].method);
  }
  *out += "), chose ";
  *out += AlignMethodName(chosen);
  *out += " by priority large > output > input";
}

// Sorts deciding rules by op name, so a reason reads the same whatever the storage order.
void SortByOpName(std::vector<AlignmentNotes::ConflictRule>* rules) {
  if (rules->size() < 2) return;
  std::sort(rules->begin(), rules->end(),
            [](const AlignmentNotes::ConflictRule& x, const AlignmentNotes::ConflictRule& y) {
              return x.op->name() < y.op->name();
            });
}

// The range a member contributes: its calibration stats, or a parameter's own data.
bool MemberRange(const TQC& t, float* min, float* max) {
  if (t.stats.has_range) {
    *min = t.stats.min;
    *max = t.stats.max;
    return true;
  }
  const Variable* v = t.port.tensor;
  if (v != nullptr && v->is_parameter()) {
    auto values = v->data()->AsFloats();
    if (!values.ok() || values->empty()) return false;
    auto [lo, hi] = std::minmax_element(values->begin(), values->end());
    *min = *lo;
    *max = *hi;
    return std::isfinite(*min) && std::isfinite(*max);
  }
  return false;
}

void Widen(bool* has, float* min, float* max, float lo, float hi) {
  if (!*has) {
    *min = lo;
    *max = hi;
    *has = true;
  } else {
    *min = std::min(*min, lo);
    *max = std::max(*max, hi);
  }
}

// Starts loading the cache lines of an object a loop will read a few iterations later. The pass
// walks objects spread over the heap (TQCs, Variables, Operations); on large graphs waiting for
// each cache miss in turn, not the work, is what costs, and these loads are independent.
template <typename T>
void Prefetch(const T* p) {
  if (p == nullptr) return;
  // Every 64-byte line the object touches: an object that does not start on a line boundary
  // spills into one more line than sizeof(T) / 64.
  const uintptr_t first = reinterpret_cast<uintptr_t>(p) & ~uintptr_t{63};
  const uintptr_t last = reinterpret_cast<uintptr_t>(p) + sizeof(T) - 1;
  for (uintptr_t line = first; line <= last; line += 64) {
    __builtin_prefetch(reinterpret_cast<const void*>(line));
  }
}
constexpr size_t kAhead = 8;  // iterations between a prefetch and the use
// The same for loops whose iterations are only a few instructions: a miss to memory (~200 ns
// measured here) spans dozens of them.
constexpr size_t kFarAhead = 32;

// The line(s) of a Variable that hold its uses and, declared just before them (graph.h), its
// producer and graph input/output flags: the bytes from 16 before the uses to their end. Only a
// hint: the layout is not relied on.
void PrefetchUses(const Variable* v) {
  if (v == nullptr) return;
  const char* uses = reinterpret_cast<const char*>(&v->uses());
  __builtin_prefetch(uses - 16);
  __builtin_prefetch(uses + sizeof(v->uses()) - 1);
}
// The first and last line of a Variable's list of uses (once its Variable is in cache), when it
// has more than one: a rule member's only use is its rule's op, and that list is not read.
void PrefetchUseList(const Variable* v) {
  if (v == nullptr || v->uses().size() < 2) return;
  __builtin_prefetch(v->uses().data());
  __builtin_prefetch(&v->uses().back());
}

// For loops that reach their data through pointers: runs load(j), which requests what item j
// will read, for j = i + distance while j < n. A chain of dependent loads gets one call per link,
// the first link farthest ahead, so each link's pointer is in cache when the next is requested.
template <typename Load>
void PrefetchAhead(size_t i, size_t distance, size_t n, const Load& load) {
  if (i + distance < n) load(i + distance);
}

// Sets a group's params, reporting whether they changed.
bool SetParamsIfChanged(QuantConfigTable* table, const TQC* member, std::vector<float> scale,
                        std::vector<int64_t> offset) {
  const TQC* root = table->Root(member);
  const bool changed = table->scale(root) != scale || table->offset(root) != offset ||
                       SettingParamsChangesState(root->state);
  if (changed) table->SetGroupParams(member, std::move(scale), std::move(offset));
  return changed;
}

// A job one thread offers and another, once free, may run: Post offers it, Serve (on the other
// thread) runs offered jobs until Close, and Collect withdraws the job if it has not started or
// waits for it to finish. A job must leave nothing undone when it is withdrawn unstarted (the
// poster's own share covers it).
class Handoff {
 public:
  void Post(const std::function<void()>* job) {
    std::lock_guard<std::mutex> lock(mu_);
    job_ = job;
    started_ = finished_ = false;
    cv_.notify_all();
  }
  void Collect() {
    std::unique_lock<std::mutex> lock(mu_);
    if (started_) cv_.wait(lock, [&] { return finished_; });
    job_ = nullptr;
  }
  void Close() {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    cv_.notify_all();
  }
  void Serve() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      cv_.wait(lock, [&] { return closed_ || (job_ != nullptr && !started_); });
      if (job_ == nullptr || started_) return;  // closed
      started_ = true;
      const std::function<void()>* job = job_;
      lock.unlock();
      (*job)();
      lock.lock();
      finished_ = true;
      cv_.notify_all();
    }
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  const std::function<void()>* job_ = nullptr;
  bool started_ = false, finished_ = false, closed_ = false;
};

class AlignmentPass {
 public:
  AlignmentPass(const Graph& graph, const TargetProfile& profile, const AlignmentOptions& options,
                QuantConfigTable* table)
      : graph_(graph),
        profile_(profile),
        options_(options),
        table_(table),
        force_overlap_(options.force_overlap.value_or(profile.force_overlap)) {}

  StatusOr<AlignmentResult> Run() {
    QALIGN_RETURN_IF_ERROR(ValidateOverrides());
    // Every later step walks the ops in graph order with their configs: look each up once.
    ops_ = graph_.operations();
    // Finding each op's config and its ports' ids reads the configs, gathering reads the TQCs:
    // with a pool, the first runs beside the slices of the second (first, as it is the longest).
    std::vector<std::function<void()>> tasks = {[this] {
      FindConfigs();
      AssignSlotIds();
    }};
    std::vector<GatherSlice> parts = GatherTasks(&tasks);
    RunTasks(options_.pool, tasks);
    JoinGather(&parts);
    // Per-channel weights never join a group, so their params come from their data alone: with a
    // pool they are derived on a second thread while the activations are aligned. The result is
    // the same (they write only their own TQCs and counter), except that on an alignment error
    // the weights may hold their params. In order, they follow a successful alignment.
    // With force_overlap off, the cascade requantize edges are known once the constraints are,
    // and sorting them by name reads every edge's names: the weights' thread sorts them when it
    // is done, while the activations are grouped (conflict edges made later are kept apart, so
    // the two threads never share the list).
    Status status, weights_status;
    const bool derive = options_.derive_weight_and_bias;
    const bool beside = weights_alone_ && Slices(weights_.size() * 8) > 1;
    const bool sort_beside = beside && !force_overlap_;
    // Once done, the weights' thread takes a share of choosing the groups' params (handoff_).
    // On an error in that step the first error in group order is returned, but groups after the
    // failing one that the weights' thread had already chosen keep their new params (as the
    // weights do): a failed pass leaves the table partly updated either way.
    helper_ = beside && (derive || sort_beside);
    tasks = {[&] {
      status = AlignActivations();
      SignalConstraintsDone();  // also when it failed before collecting them
      handoff_.Close();
    }};
    if (derive || sort_beside) {
      tasks.push_back([&] {
        if (derive && (beside || status.ok())) weights_status = DeriveWeightParams();
        if (sort_beside) {
          constraints_done_.wait(false, std::memory_order_acquire);
          SortRequantizes();  // an empty list when AlignActivations failed before the constraints
        }
        if (helper_) handoff_.Serve();
      });
    }
    RunTasks(beside ? options_.pool : nullptr, tasks);
    QALIGN_RETURN_IF_ERROR(status);
    if (derive) {
      QALIGN_RETURN_IF_ERROR(weights_status);
      DeriveBiasParams();
    }
    Finish();
    return std::move(result_);
  }

  void SignalConstraintsDone() {
    constraints_done_.store(true, std::memory_order_release);
    constraints_done_.notify_one();
  }

  // Steps 1-4 over the TQCs the gather listed.
  Status AlignActivations() {
    QALIGN_RETURN_IF_ERROR(CollectRules());
    CollectConstraints();
    // requantizes_ now holds the cascade edges and is not written again by this thread (see Run).
    SignalConstraintsDone();
    // Linking and setting group params update the states in info_; they are written back to the
    // TQCs once, in id order, whether or not the steps succeed (as if each change went straight
    // to its TQC).
    Status status = FormGroups();
    if (status.ok()) status = ChooseParams();
    FlushStates();
    return status;
  }

  Status ValidateOverrides() {
    for (const auto& [name, method] : options_.method_by_node) {
      if (graph_.FindOperation(name) == nullptr) {
        return NotFoundError("--align-node ", name, "=", AlignMethodName(method),
                             ": the model has no op named '", name, "'");
      }
    }
    for (const auto& [type, method] : options_.method_by_op_type) {
      if (profile_.FindRule(type) == nullptr && !DefaultRuleKind(type)) {
        return InvalidArgumentError("--align ", type, "=", AlignMethodName(method), ": target '",
                                    profile_.name, "' has no rule for op type ", type,
                                    " and qalign knows no sharing kind for it");
      }
    }
    return Status::Ok();
  }

  // configs_[i] = the config of ops_[i], or nullptr. Dispatch makes the configs in graph order, so
  // walking both lists side by side finds them all without a hash lookup; when every config was
  // met in order, the ops skipped have none. Any other order falls back to the table's index.
  // type_ids_[i] is the config's op type id (-1 without a config), for RuleOf.
  void FindConfigs() {
    configs_.assign(ops_.size(), nullptr);
    type_ids_.assign(ops_.size(), -1);
    const size_t count = table_->num_op_configs();
    size_t k = 0;
    for (size_t i = 0; i < ops_.size() && k < count; ++i) {
      // The configs were allocated among other objects: the hardware prefetcher cannot follow.
      if (k + kFarAhead < count) __builtin_prefetch(&table_->op_config(k + kFarAhead));
      const OperationQuantConfig& config = table_->op_config(k);
      if (config.op != ops_[i]) continue;
      configs_[i] = &config;
      type_ids_[i] = config.type_id;
      ++k;
    }
    if (k == count) return;
    for (size_t i = 0; i < ops_.size(); ++i) {
      configs_[i] = table_->FindOp(ops_[i]);
      type_ids_[i] = configs_[i] == nullptr ? -1 : configs_[i]->type_id;
    }
  }

  // The effective rule of op i. Without a node override it depends on the op type only, so
  // ResolveRule runs once per type (interned by the table) and the result is reused; only ops
  // named by a node override are read and resolved one by one.
  StatusOr<const EffectiveRule*> RuleOf(size_t i) {
    const Operation& op = *ops_[i];
    if (!options_.method_by_node.empty() && options_.method_by_node.count(op.name()) != 0) {
      QALIGN_ASSIGN_OR_RETURN(EffectiveRule rule, ResolveRule(op, profile_, options_));
      return &node_rules_.emplace_back(rule);
    }
    const size_t type = static_cast<size_t>(type_ids_[i]);
    if (type >= rule_by_type_.size()) rule_by_type_.resize(table_->num_op_types());
    if (!rule_by_type_[type]) {
      QALIGN_ASSIGN_OR_RETURN(rule_by_type_[type], ResolveRule(op, profile_, options_));
    }
    return &*rule_by_type_[type];
  }

  // What Gather collects from one slice of the TQCs. The lists are reserved for the whole slice
  // (address space only), so they are not copied while they grow, and a pass over a graph of the
  // same size gets the same blocks back from the huge-page cache.
  struct GatherSlice {
    std::vector<const QuantScheme*> schemes;  // the slice's scheme classes
    HugeVector<std::pair<const Variable*, int32_t>> producers;
    HugeVector<int32_t> baked, biases;
    HugeVector<WeightItem> weights;
    bool weights_alone = true;  // every weight listed is a group of one
  };

  // One sweep over the TQCs in id order: the dense copy every later step reads, and the short
  // lists of TQCs that later steps visit (BAKED, per-channel weights, biases). Appends the
  // sweep's tasks to `tasks`, one per slice of the id range, each gathering into its own part;
  // JoinGather joins the parts once they have run.
  std::vector<GatherSlice> GatherTasks(std::vector<std::function<void()>>* tasks) {
    const size_t n = table_->size();
    info_.resize(n);
    tensor_.resize(n);
    // Each part has its own lists and scheme classes; joined in slice order, they are those of
    // one sweep in id order. Two slices per thread let a thread that finished an earlier, longer
    // task take some of them.
    const size_t threads = Slices(n);
    const size_t slices = threads == 1 ? 1 : 2 * threads;
    std::vector<GatherSlice> parts(slices);
    for (size_t k = 0; k < slices; ++k) {
      tasks->push_back([this, n, k, slices, part = &parts[k]] {
        Gather(n * k / slices, n * (k + 1) / slices, part);
      });
    }
    return parts;
  }

  void JoinGather(std::vector<GatherSlice>* slice_parts) {
    std::vector<GatherSlice>& parts = *slice_parts;
    const size_t n = table_->size();
    const size_t slices = parts.size();
    HugeVector<std::pair<const Variable*, int32_t>> producers;
    size_t num_producers = 0, num_baked = 0, num_weights = 0, num_biases = 0;
    for (const GatherSlice& part : parts) {
      num_producers += part.producers.size();
      num_baked += part.baked.size();
      num_weights += part.weights.size();
      num_biases += part.biases.size();
    }
    producers.reserve(num_producers);
    baked_ids_.reserve(num_baked);
    weights_.reserve(num_weights);
    bias_ids_.reserve(num_biases);
    for (size_t k = 0; k < slices; ++k) {
      GatherSlice& part = parts[k];
      // The slice's scheme classes as global ones (first appearance in id order).
      std::vector<uint16_t> global(part.schemes.size());
      bool renumber = false;
      for (size_t c = 0; c < part.schemes.size(); ++c) {
        size_t g = 0;
        while (g < schemes_.size() && !(*schemes_[g] == *part.schemes[c])) ++g;
        if (g == schemes_.size()) schemes_.push_back(part.schemes[c]);
        global[c] = static_cast<uint16_t>(g);
        renumber |= g != c;
      }
      if (renumber) {
        for (size_t id = n * k / slices; id < n * (k + 1) / slices; ++id) {
          info_[id].scheme = global[info_[id].scheme];
        }
        for (WeightItem& w : part.weights) w.scheme = global[w.scheme];
      }
      producers.insert(producers.end(), part.producers.begin(), part.producers.end());
      baked_ids_.insert(baked_ids_.end(), part.baked.begin(), part.baked.end());
      weights_.insert(weights_.end(), part.weights.begin(), part.weights.end());
      bias_ids_.insert(bias_ids_.end(), part.biases.begin(), part.biases.end());
      weights_alone_ &= part.weights_alone;
    }
    producer_of_.Build(producers);
    for (const QuantScheme* scheme : schemes_) {
      scheme_valid_.push_back(ValidateScheme(*scheme).ok() && !scheme->policy.Has(kFloating));
    }
  }

  void Gather(size_t begin, size_t end, GatherSlice* out) {
    out->producers.reserve(end - begin);
    out->baked.reserve(end - begin);
    out->biases.reserve(end - begin);
    out->weights.reserve(end - begin);
    std::vector<const QuantScheme*>& schemes = out->schemes;
    const QuantScheme* last_scheme = nullptr;
    uint16_t last_class = 0;
    for (size_t id = begin; id < end; ++id) {
      if (id + kAhead < end) Prefetch(table_->Get(static_cast<int32_t>(id + kAhead)));
      const TQC* t = table_->Get(static_cast<int32_t>(id));
      TqcInfo info;
      tensor_[id] = t->port.tensor;
      info.state = t->state;
      uint8_t flags = 0;
      if (!t->scale.empty()) flags |= TqcInfo::kHasParams;
      if (t->port.is_input) flags |= TqcInfo::kIsInput;
      // A producer-side port registered in its op's config (as Create does).
      if (!t->port.is_input && t->port.op != nullptr && t->port.index >= 0 &&
          t->port.tensor != nullptr) {
        out->producers.emplace_back(t->port.tensor, static_cast<int32_t>(id));
      }
      // Schemes are few (activation, weight, bias): compare with the last one first.
      if (last_scheme == nullptr || !(*last_scheme == t->scheme)) {
        size_t k = 0;
        while (k < schemes.size() && !(*schemes[k] == t->scheme)) ++k;
        if (k == schemes.size()) schemes.push_back(&t->scheme);
        last_scheme = schemes[k];
        last_class = static_cast<uint16_t>(k);
      }
      info.scheme = last_class;
      if (IsJoinable(*t)) {
        flags |= TqcInfo::kJoinable;
        float lo, hi;
        if (MemberRange(*t, &lo, &hi)) {
          flags |= TqcInfo::kHasRange;
          info.min = lo;
          info.max = hi;
        }
        if (IsBaked(t->state) && t->scale.size() == 1 && t->offset.size() == 1) {
          out->baked.push_back(static_cast<int32_t>(id));
        }
      }
      info.flags = flags;
      info_[id] = info;
      if (t->role == TensorRole::kWeight && t->per_channel()) {
        // Derived from its data unless floating, not quantized, BAKED or OVERLAPPED.
        if (!t->floating() && IsQuantizedState(t->state) && !IsBaked(t->state) &&
            t->state != QuantState::kOverlapped && t->port.tensor != nullptr) {
          out->weights.push_back({t->port.tensor, static_cast<int32_t>(id), t->channel_axis,
                                  last_class});
          // Per-channel TQCs never join a group (Link refuses them), so each weight's params are
          // its own and weights can be derived on several threads; checked, not assumed.
          out->weights_alone &= table_->next_member(static_cast<int32_t>(id)) ==
                                static_cast<int32_t>(id);
        }
      } else if (t->role == TensorRole::kBias) {
        out->biases.push_back(static_cast<int32_t>(id));
      }
    }
  }

  // The number of slices a sweep over n items is split into: one per pool thread, or 1 without a
  // pool or for a graph too small to gain from threads.
  size_t Slices(size_t n) const {
    constexpr size_t kMinPerThread = 16384;
    if (options_.pool == nullptr || options_.pool->num_threads() < 2 || n < 2 * kMinPerThread) {
      return 1;
    }
    return std::min(static_cast<size_t>(options_.pool->num_threads()), n / kMinPerThread);
  }
  // Runs fn(k) for k in [0, slices): on the pool when there is one and more than one slice,
  // otherwise in order on the calling thread.
  void ForSlices(size_t slices, const std::function<void(size_t)>& fn) const {
    if (slices == 1 || options_.pool == nullptr) {
      for (size_t k = 0; k < slices; ++k) fn(k);
      return;
    }
    options_.pool->ParallelFor(static_cast<int64_t>(slices), [&](int64_t begin, int64_t end) {
      for (int64_t k = begin; k < end; ++k) fn(static_cast<size_t>(k));
    });
  }

  // The ids of every op's ports (inputs, then outputs; -1 for an empty slot) in one array. Dispatch
  // creates TQCs in exactly this order, so a slot's id is found by comparing its pointer with the
  // next TQC's address, without reading the TQC (any other order falls back to reading it).
  void AssignSlotIds() {
    const int32_t n = static_cast<int32_t>(table_->size());
    slot_first_.assign(ops_.size() + 1, 0);
    slot_inputs_.assign(ops_.size(), 0);
    slot_ids_.reserve(table_->size());
    int32_t next = 0;
    auto id_of = [&](const TQC* t) -> int32_t {
      if (t == nullptr) return -1;
      const int32_t id = next < n && table_->Get(next) == t ? next : t->id;
      next = id + 1;
      return id;
    };
    for (size_t i = 0; i < ops_.size(); ++i) {
      // Two dependent loads: the config (for where its port lists are), then the lists.
      PrefetchAhead(i, kFarAhead, ops_.size(), [&](size_t j) { __builtin_prefetch(configs_[j]); });
      PrefetchAhead(i, kAhead, ops_.size(), [&](size_t j) {
        if (configs_[j] == nullptr) return;
        __builtin_prefetch(configs_[j]->inputs.data());
        __builtin_prefetch(configs_[j]->outputs.data());
      });
      slot_first_[i] = static_cast<uint32_t>(slot_ids_.size());
      const OperationQuantConfig* config = configs_[i];
      if (config == nullptr) continue;
      slot_inputs_[i] = static_cast<uint32_t>(config->inputs.size());
      for (const TQC* t : config->inputs) slot_ids_.push_back(id_of(t));
      for (const TQC* t : config->outputs) slot_ids_.push_back(id_of(t));
    }
    slot_first_[ops_.size()] = static_cast<uint32_t>(slot_ids_.size());
  }
  std::span<const int32_t> InputIds(size_t i) const {
    return {slot_ids_.data() + slot_first_[i], slot_inputs_[i]};
  }
  std::span<const int32_t> OutputIds(size_t i) const {
    const size_t inputs = slot_inputs_[i];
    return {slot_ids_.data() + slot_first_[i] + inputs, slot_first_[i + 1] - slot_first_[i] - inputs};
  }

  // Appends the ids of the joinable ports op i's rule ties, like RuleMembers.
  void AppendRuleMemberIds(size_t i, RuleKind kind) {
    auto add = [this](int32_t id) {
      if (id >= 0 && info_[static_cast<size_t>(id)].joinable()) rule_members_.push_back(id);
    };
    const std::span<const int32_t> inputs = InputIds(i), outputs = OutputIds(i);
    switch (kind) {
      case RuleKind::kShareInputsAndOutput:
        for (int32_t id : inputs) add(id);
        for (int32_t id : outputs) add(id);
        break;
      case RuleKind::kShareInputOutput:
        if (!inputs.empty()) add(inputs[0]);
        for (int32_t id : outputs) add(id);
        break;
      case RuleKind::kShareInputs:
        for (int32_t id : inputs) add(id);
        break;
      case RuleKind::kFixedOutput:
        break;
    }
  }

  // Pins a TQC unless it already is (a fixed-range pin comes first and wins over a BAKED one).
  void AddPin(int32_t id, const Pin& pin) {
    if (info_[static_cast<size_t>(id)].pin >= 0) return;
    info_[static_cast<size_t>(id)].pin = static_cast<int32_t>(pins_.size());
    pins_.push_back(pin);
  }
  const Pin* PinOf(int32_t id) const {
    const int32_t i = info_[static_cast<size_t>(id)].pin;
    return i < 0 ? nullptr : &pins_[static_cast<size_t>(i)];
  }
  std::span<const int32_t> MembersOf(const RuleInstance& r) const {
    return {rule_members_.data() + r.first, r.count};
  }

  // Step 1a: the effective rule of every quantized op.
  Status CollectRules() {
    // Upper bounds, reserved but not touched: growing by doubling would page in twice the memory.
    rules_.reserve(ops_.size());
    rule_members_.reserve(table_->size());
    for (size_t i = 0; i < ops_.size(); ++i) {
      const OperationQuantConfig* config = configs_[i];
      if (config == nullptr) continue;
      Operation* op = ops_[i];
      QALIGN_ASSIGN_OR_RETURN(const EffectiveRule* resolved, RuleOf(i));
      const EffectiveRule& rule = *resolved;
      if (!rule.present) continue;
      if (rule.kind == RuleKind::kFixedOutput) {
        bool any = false;
        for (int32_t out_id : OutputIds(i)) {
          if (out_id < 0 || !info_[static_cast<size_t>(out_id)].joinable()) continue;
          TQC* out = table_->Get(out_id);
          if (rule.fixed_zero_point < out->scheme.quant_min ||
              rule.fixed_zero_point > out->scheme.quant_max || !(rule.fixed_scale > 0.0f)) {
            return InvalidArgumentError(
                "target '", profile_.name, "': fixed output params (", rule.fixed_scale, ", ",
                rule.fixed_zero_point, ") of ", op->Describe(), " do not fit ",
                DescribeTqc(*out), " scheme ", out->scheme.ToString());
          }
          Pin pin;
          pin.scale = rule.fixed_scale;
          pin.zero_point = rule.fixed_zero_point;
          pin.fixed = true;
          pin.source = out;
          AddPin(out->id, pin);
          any = true;
          ++result_.counters.fixed_outputs;
        }
        if (any) ++result_.counters.rule_ops;
        if (options_.method_by_node.count(op->name()) ||
            options_.method_by_op_type.count(op->type())) {
          result_.notes.push_back(StrCat(op->Describe(),
                                         ": fixed output range kept; overrides do not apply to it"));
        }
        continue;
      }
      if (rule.method == AlignMethod::kNone) continue;
      const size_t first = rule_members_.size();
      AppendRuleMemberIds(i, rule.kind);
      const size_t count = rule_members_.size() - first;
      // A rule needs two quantized ports to tie, except an inputs rule whose method takes the
      // params from a port outside the group (`output`): its single input still adopts them.
      const bool single_ok = count == 1 && rule.kind == RuleKind::kShareInputs &&
                             rule.method == AlignMethod::kOutput;
      if (count < 2 && !single_ok) {
        rule_members_.resize(first);
        continue;
      }
      RuleInstance instance;
      instance.op = op;
      instance.config = config;
      instance.rule = &rule;
      instance.first = static_cast<uint32_t>(first);
      instance.count = static_cast<uint32_t>(count);
      rules_.push_back(instance);
      ++result_.counters.rule_ops;
    }
    // BAKED members pin their group to their own params.
    for (int32_t id : baked_ids_) {
      const TQC* t = table_->Get(id);
      Pin pin;
      pin.scale = t->scale[0];
      pin.zero_point = t->offset[0];
      pin.source = t;
      AddPin(t->id, pin);
    }
    return Status::Ok();
  }

  // Step 1b + 2: rule ties and default producer -> consumer edges, with cascade control.
  // What a cascade edge records of the tensor t of the relaxed consumer-side TQC id.
  struct CascadeTensor {
    int32_t id = -1;
    int32_t consumers = 0;
    Operation* producer = nullptr;
    bool graph_output = false;
  };
  CascadeTensor ReadCascadeTensor(int32_t id, const Variable& t) const {
    return {id, static_cast<int32_t>(CountValueConsumers(t)), t.producer(), t.is_graph_output()};
  }

  void CollectConstraints() {
    // The cascade records are read while the tensor's Variable and uses are in cache.
    HugeVector<CascadeTensor> cascade;  // in rule order, which is graph order
    if (!force_overlap_) {
      FindShapeReaders();
      const size_t count = rule_members_.size();
      cascade.reserve(count);
      // The tensor of member j when it is an input port (only those are checked), or nullptr.
      auto input_tensor = [&](size_t j) -> const Variable* {
        const size_t m = static_cast<size_t>(rule_members_[j]);
        return info_[m].is_input() ? tensor_[m] : nullptr;
      };
      for (const RuleInstance& r : rules_) {
        for (uint32_t k = r.first; k < r.first + r.count; ++k) {
          // Two dependent loads: the Variable (its uses and flags), then the uses.
          PrefetchAhead(k, 2 * kFarAhead, count, [&](size_t j) { PrefetchUses(input_tensor(j)); });
          PrefetchAhead(k, kFarAhead, count, [&](size_t j) { PrefetchUseList(input_tensor(j)); });
          const int32_t m = rule_members_[k];
          if (!info_[static_cast<size_t>(m)].is_input()) continue;
          const Variable* t = tensor_[static_cast<size_t>(m)];
          // Any consumer other than the rule's op that reads the values (not just the shape). The
          // rule's op is one of t's uses, so with one use there is no other (and the list, a
          // cache miss of its own, is not read).
          bool others = false;
          for (size_t u = 0; u < t->uses().size() && t->uses().size() > 1 && !others; ++u) {
            const Operation* op = t->uses()[u].op;
            others = op != r.op && !IsShapeReader(op);
          }
          if (others || t->is_graph_output()) {
            info_[static_cast<size_t>(m)].flags |= TqcInfo::kRelaxed;
            cascade.push_back(ReadCascadeTensor(m, *t));
          }
        }
      }
    }
    size_t ties = 0;
    for (const RuleInstance& r : rules_) ties += r.count > 0 ? r.count - 1 : 0;
    // The joinable consumer-side TQCs in graph order, each with its producer-side TQC.
    HugeVector<InputEdge> edges;
    edges.reserve(table_->size() / 2);
    for (size_t i = 0; i < ops_.size(); ++i) {
      if (configs_[i] == nullptr) continue;
      const std::span<const int32_t> inputs = InputIds(i);
      for (size_t port = 0; port < inputs.size(); ++port) {
        const int32_t c = inputs[port];
        if (c < 0 || !info_[static_cast<size_t>(c)].joinable()) continue;
        edges.push_back({static_cast<uint32_t>(i), static_cast<int32_t>(port), c, -1});
      }
    }
    for (size_t k = 0; k < edges.size(); ++k) {
      if (k + kFarAhead < edges.size()) {
        producer_of_.Prefetch(tensor_[static_cast<size_t>(edges[k + kFarAhead].consumer)]);
      }
      edges[k].producer = producer_of_.Find(tensor_[static_cast<size_t>(edges[k].consumer)]);
    }
    constraints_.reserve(ties + edges.size());
    auto add = [this](int32_t a, int32_t b, int32_t rule) { constraints_.push_back({a, b, rule}); };
    for (size_t r = 0; r < rules_.size(); ++r) {
      std::span<const int32_t> members = MembersOf(rules_[r]);
      for (size_t i = 1; i < members.size(); ++i) {
        add(members[0], members[i], static_cast<int32_t>(r));
      }
    }
    // Default sharing: every consumer-side TQC of a tensor shares the producer-side TQC; when the
    // producer side is not quantized, the consumers share one quantization among themselves,
    // anchored at the first consumer port by name (so conflicts replay the same constraints
    // whatever the storage order).
    auto producer_joins = [this](const InputEdge& e) {
      return e.producer >= 0 && info_[static_cast<size_t>(e.producer)].joinable();
    };
    std::unordered_map<const Variable*, int32_t> anchor;
    for (const InputEdge& e : edges) {
      if (info_[static_cast<size_t>(e.consumer)].relaxed() || producer_joins(e)) continue;
      auto [it, inserted] = anchor.emplace(tensor_[static_cast<size_t>(e.consumer)], e.consumer);
      if (!inserted && PortLess(table_->Get(e.consumer), table_->Get(it->second))) {
        it->second = e.consumer;
      }
    }
    requantizes_.reserve(requantizes_.size() + cascade.size());
    // The relaxed TQCs come in the same order here (ops in graph order, input ports in order) as
    // in the rules above, so each finds its record at the front of what is left of the list.
    size_t next = 0;
    auto cascade_of = [&](int32_t c) {
      if (next < cascade.size() && cascade[next].id == c) return cascade[next++];
      return ReadCascadeTensor(c, *tensor_[static_cast<size_t>(c)]);  // not expected: read again
    };
    for (size_t k = 0; k < edges.size(); ++k) {
      const InputEdge& e = edges[k];
      const int32_t c = e.consumer;
      if (info_[static_cast<size_t>(c)].relaxed()) {
        const CascadeTensor tensor = cascade_of(c);
        if (producer_joins(e)) {
          RequantizeEdge edge;
          edge.tensor = tensor_[static_cast<size_t>(c)];
          edge.producer = tensor.producer;
          edge.consumer = ops_[e.op];
          edge.cascade_port = e.port;
          edge.cascade_consumers = tensor.consumers;
          edge.cascade_graph_output = tensor.graph_output;
          requantizes_.push_back(std::move(edge));
        }
        continue;
      }
      if (producer_joins(e)) {
        add(e.producer, c, -1);
      } else {
        const int32_t a = anchor.at(tensor_[static_cast<size_t>(c)]);
        if (a != c) add(a, c, -1);
      }
    }
    result_.counters.constraints = static_cast<int64_t>(constraints_.size());
  }

  // The ops that read only their input's shape (ReadsOnlyShape), sorted, so cascade control
  // tells them apart without reading every consumer op: their types come from the op type ids,
  // and only ops without a config are read.
  void FindShapeReaders() {
    std::vector<int8_t> by_type(table_->num_op_types(), -1);
    for (size_t i = 0; i < ops_.size(); ++i) {
      const int32_t type = type_ids_[i];
      if (type < 0) {
        if (ReadsOnlyShape(*ops_[i])) shape_readers_.push_back(ops_[i]);
        continue;
      }
      int8_t& known = by_type[static_cast<size_t>(type)];
      if (known < 0) known = ReadsOnlyShape(*ops_[i]) ? 1 : 0;
      if (known == 1) shape_readers_.push_back(ops_[i]);
    }
    std::sort(shape_readers_.begin(), shape_readers_.end());
  }
  bool IsShapeReader(const Operation* op) const {
    return !shape_readers_.empty() &&
           std::binary_search(shape_readers_.begin(), shape_readers_.end(), op);
  }

  // Distinct consuming ops of t that read its values (Shape and Size do not).
  size_t CountValueConsumers(const Variable& t) const {
    const std::vector<Use>& uses = t.uses();
    size_t count = 0;
    for (size_t i = 0; i < uses.size(); ++i) {
      if (IsShapeReader(uses[i].op)) continue;
      bool first_use = true;  // count each op at its first use only
      for (size_t j = 0; j < i && first_use; ++j) first_use = uses[j].op != uses[i].op;
      if (first_use) ++count;
    }
    return count;
  }

  // Step 3: union. A part of the partition can only be conflicted when it holds two schemes or
  // two different pinned values. When no constraint joins two schemes and all pins agree (the
  // usual case), every constraint is linked in order: the partition does not depend on the order.
  // Otherwise look ahead with a scratch partition: groups without a conflict are still linked in
  // any order; groups with one are replayed in canonical order, dropping (and recording) each
  // constraint that would join incompatible parts.
  Status FormGroups() {
    bool may_conflict = false;
    for (const Pin& pin : pins_) may_conflict |= !pin.Same(pins_.front());
    for (size_t k = 0; k < constraints_.size() && !may_conflict; ++k) {
      const Constraint& c = constraints_[k];
      may_conflict = info_[static_cast<size_t>(c.a)].scheme != info_[static_cast<size_t>(c.b)].scheme;
    }
    UnionFind& uf = table_->union_find();
    if (!may_conflict) {
      for (const Constraint& c : constraints_) {
        // Both TQCs are joinable with one scheme, so Link would not refuse them.
        const int32_t ra = uf.Find(c.a), rb = uf.Find(c.b);
        if (ra == rb) continue;
        int32_t root = -1, child = -1;
        table_->UnionRoots(ra, rb, &root, &child);
        Linked(root, child);
      }
      return Status::Ok();
    }
    const size_t n = table_->size();
    ScratchSets look(n);
    for (const Constraint& c : constraints_) look.Union(c.a, c.b);
    // Per part of the look-ahead partition: its scheme class (or -1) and pin; parts that see two
    // schemes or two different pins are conflicted.
    std::vector<int32_t> scheme_rep(n, -1);
    std::vector<const Pin*> pin_rep(n, nullptr);
    std::vector<uint8_t> conflicted(n, 0);
    auto visit = [&](int32_t id) {
      const int32_t r = look.Find(id);
      const TqcInfo& info = info_[static_cast<size_t>(id)];
      if (scheme_rep[r] < 0) {
        scheme_rep[r] = info.scheme;
      } else if (scheme_rep[r] != info.scheme) {
        conflicted[r] = 1;
      }
      if (const Pin* pin = PinOf(id); pin != nullptr) {
        if (pin_rep[r] == nullptr) {
          pin_rep[r] = pin;
        } else if (!pin_rep[r]->Same(*pin)) {
          conflicted[r] = 1;
        }
      }
    };
    for (const Constraint& c : constraints_) {
      visit(c.a);
      visit(c.b);
    }
    std::vector<NamedConstraint> replay;
    for (size_t k = 0; k < constraints_.size(); ++k) {
      const Constraint& c = constraints_[k];
      if (conflicted[look.Find(c.a)]) {
        replay.push_back({table_->Get(c.a), table_->Get(c.b),
                          c.rule < 0 ? nullptr : rules_[static_cast<size_t>(c.rule)].op, c});
        continue;
      }
      if (uf.Find(c.a) == uf.Find(c.b)) continue;
      QALIGN_RETURN_IF_ERROR(LinkTable(c));
    }
    if (replay.empty()) return Status::Ok();

    // Canonical replay over a fresh scratch partition of the conflicted TQCs.
    std::sort(replay.begin(), replay.end(), ConstraintLess);
    ScratchSets parts(n);
    std::unordered_map<int32_t, const TQC*> scheme_of;  // part root -> a member with its scheme
    std::unordered_map<int32_t, const Pin*> pin_of;     // part root -> its pin
    auto part_of = [&](const TQC* t) {
      const int32_t r = parts.Find(t->id);
      scheme_of.emplace(r, t);
      if (const Pin* pin = PinOf(t->id); pin != nullptr) pin_of.emplace(r, pin);
      return r;
    };
    for (const NamedConstraint& c : replay) {
      const int32_t ra = part_of(c.a), rb = part_of(c.b);
      if (ra == rb) continue;
      const TQC* sa = scheme_of[ra];
      const TQC* sb = scheme_of[rb];
      std::string why;
      if (!(sa->scheme == sb->scheme)) {
        if (!options_.requantize_on_scheme_mismatch) {
          return InvalidArgumentError(
              "scheme mismatch: ", DescribeTqc(*c.a), " must share params with ", DescribeTqc(*c.b),
              " (", c.rule_op ? StrCat(c.rule_op->Describe(), " rule") : std::string("same tensor"),
              ") but ", DescribeTqc(*sa), " is ", sa->scheme.ToString(), " and ", DescribeTqc(*sb),
              " is ", sb->scheme.ToString(), "; pass --requantize-on-mismatch to insert a requantize");
        }
        why = StrCat("scheme mismatch: ", sa->scheme.ToString(), " vs ", sb->scheme.ToString());
      } else {
        auto pa = pin_of.find(ra), pb = pin_of.find(rb);
        if (pa != pin_of.end() && pb != pin_of.end() && !pa->second->Same(*pb->second)) {
          const Pin& x = *pa->second;
          const Pin& y = *pb->second;
          why = StrCat("conflicting ", x.fixed ? "fixed" : "baked", " params (", x.scale, ", ",
                       x.zero_point, ") of ", DescribeTqc(*x.source), " and ",
                       y.fixed ? "fixed" : "baked", " params (", y.scale, ", ", y.zero_point,
                       ") of ", DescribeTqc(*y.source));
        }
      }
      if (!why.empty()) {
        RecordDroppedConstraint(c, why);
        continue;
      }
      parts.Union(ra, rb);
      const int32_t r = parts.Find(ra);
      const int32_t other = r == ra ? rb : ra;
      scheme_of[r] = sa;
      if (pin_of.find(r) == pin_of.end() && pin_of.count(other)) pin_of[r] = pin_of[other];
      QALIGN_RETURN_IF_ERROR(LinkTable(c.ids));
    }
    return Status::Ok();
  }

  // QuantConfigTable::Link on the dense states: both TQCs are joinable with one scheme (the
  // constraints hold joinable TQCs only and FormGroups checks the schemes), so Link would accept
  // them; its state changes are applied to state_ instead of the TQCs.
  Status LinkTable(const Constraint& c) {
    int32_t root = -1, child = -1;
    if (table_->UnionIds(c.a, c.b, &root, &child)) Linked(root, child);
    return Status::Ok();
  }
  // The state changes of a link that made `root` the root of `child`'s former group.
  void Linked(int32_t root, int32_t child) {
    ++result_.counters.links_made;
    const bool root_params = info_[static_cast<size_t>(root)].has_params();
    SetState(child, PassiveStateOf(info_[static_cast<size_t>(child)].state, root_params));
    if (root_params != info_[static_cast<size_t>(child)].has_params()) {
      // The child's former members (after the splice: from the root's next up to the child).
      for (int32_t m = table_->next_member(root); m != child; m = table_->next_member(m)) {
        SetState(m, PassiveStateOf(info_[static_cast<size_t>(m)].state, root_params));
      }
    }
  }

  // The state of a non-root member once its group root has (or lacks) params, as in Link.
  static QuantState PassiveStateOf(QuantState state, bool root_has_params) {
    switch (state) {
      case QuantState::kBaked:
      case QuantState::kPassiveBaked:
        return QuantState::kPassiveBaked;
      case QuantState::kOverlapped:
        return QuantState::kOverlapped;
      default:
        return root_has_params ? QuantState::kPassive : QuantState::kPassiveInit;
    }
  }

  void SetState(int32_t id, QuantState state) {
    TqcInfo& info = info_[static_cast<size_t>(id)];
    if (info.state == state) return;
    info.state = state;
    info.flags |= TqcInfo::kDirty;
  }

  // Writes the changed states back to their TQCs, in id order.
  void FlushStates() {
    const size_t n = info_.size();
    const UnionFind& uf = table_->union_find();
    const size_t slices = Slices(n);
    ForSlices(slices, [&](size_t k) {
      const size_t end = n * (k + 1) / slices;
      for (size_t id = n * k / slices; id < end; ++id) {
        // Most TQCs of a graph are written (each link makes a member PASSIVE or PASSIVE_INIT):
        // their lines are requested, for writing, well before the store, and a PASSIVE_INIT
        // member's root (its parent, once FindNoCompress has run) before it is read.
        if (id + kFarAhead < end) {
          const size_t ahead = id + kFarAhead;
          const bool passive_init = info_[ahead].state == QuantState::kPassiveInit;
          if (passive_init) {
            __builtin_prefetch(&info_[static_cast<size_t>(uf.parent(static_cast<int32_t>(ahead)))]);
          }
          if (passive_init || (info_[ahead].flags & TqcInfo::kDirty)) {
            __builtin_prefetch(&table_->Get(static_cast<int32_t>(ahead))->state, 1);
          }
        }
        TqcInfo& info = info_[id];
        // A PASSIVE_INIT member (linked while its root had no params) of a group whose root the
        // pass gave params is now PASSIVE, as QuantConfigTable::SetGroupParams would make it. No
        // link follows ChooseParams, so the root found read-only is the one that got them.
        if (info.state == QuantState::kPassiveInit &&
            (info_[static_cast<size_t>(uf.FindNoCompress(static_cast<int32_t>(id)))].flags &
             TqcInfo::kParamsSet)) {
          info.state = QuantState::kPassive;
          info.flags |= TqcInfo::kDirty;
        }
        if (info.flags & TqcInfo::kDirty) {
          table_->Get(static_cast<int32_t>(id))->state = info.state;
        }
      }
    });
  }

  // SetParamsIfChanged for per-tensor params of the group rooted at `root`, on the dense states:
  // QuantConfigTable::SetGroupParams's state changes go to state_.
  bool SetRootParamsIfChanged(int32_t root_id, float scale, int64_t zero_point) {
    TQC* root = table_->Get(root_id);
    const QuantState rs = info_[static_cast<size_t>(root_id)].state;
    const bool changed = !(root->scale.size() == 1 && root->scale[0] == scale) ||
                         !(root->offset.size() == 1 && root->offset[0] == zero_point) ||
                         SettingParamsChangesState(rs);
    if (!changed) return false;
    root->scale.assign(1, scale);
    root->offset.assign(1, zero_point);
    info_[static_cast<size_t>(root_id)].flags |= TqcInfo::kHasParams;
    if (rs != QuantState::kBaked && rs != QuantState::kOverlapped) {
      SetState(root_id, QuantState::kActivated);
    }
    // Its PASSIVE_INIT members become PASSIVE in FlushStates: one sweep in id order instead of a
    // walk of every group's ring.
    info_[static_cast<size_t>(root_id)].flags |= TqcInfo::kParamsSet;
    return true;
  }

  void RecordDroppedConstraint(const NamedConstraint& c, const std::string& why) {
    ++result_.counters.conflicts;
    RequantizeEdge edge;
    if (c.rule_op == nullptr) {
      // A default edge: the consumer re-quantizes the producer's tensor.
      edge.tensor = c.b->port.tensor;
      edge.producer = edge.tensor->producer();
      edge.consumer = c.b->port.op;
    } else {
      // A rule tie: requantize the input that cannot join (or, for two outputs, inside the op).
      const TQC* in = c.b->port.is_input ? c.b : (c.a->port.is_input ? c.a : nullptr);
      if (in != nullptr) {
        edge.tensor = in->port.tensor;
        edge.producer = edge.tensor->producer();
        edge.consumer = c.rule_op;
      } else {
        edge.tensor = c.b->port.tensor;
        edge.producer = c.rule_op;
        edge.consumer = nullptr;
      }
    }
    edge.text = why;
    result_.notes.push_back(StrCat("constraint ", DescribeTqc(*c.a), " ~ ", DescribeTqc(*c.b),
                                   " dropped: ", why));
    dropped_requantizes_.push_back(std::move(edge));
  }

  // Step 4: params per group.
  Status ChooseParams() {
    const size_t n = table_->size();
    HugeVector<int32_t> group_of_root(n, -1);
    groups_.reserve(n);
    UnionFind& uf = table_->union_find();
    auto group_for = [&](int32_t id) -> int32_t {
      const int32_t r = uf.Find(id);
      int32_t& g = group_of_root[static_cast<size_t>(r)];
      if (g < 0) {
        g = static_cast<int32_t>(groups_.size());
        groups_.push_back(GroupState{});
        groups_.back().root = r;
      }
      return g;
    };
    for (size_t id = 0; id < n; ++id) {
      const TqcInfo& info = info_[id];
      if (!info.joinable()) continue;
      GroupState& g = groups_[static_cast<size_t>(group_for(static_cast<int32_t>(id)))];
      if (info.has_range()) Widen(&g.has_range, &g.min, &g.max, info.min, info.max);
      if (const Pin* pin = PinOf(static_cast<int32_t>(id)); pin != nullptr) {
        const Pin*& slot = pin->fixed ? g.fixed_pin : g.baked_pin;
        if (slot == nullptr || PortLess(pin->source, slot->source)) slot = pin;
      }
    }
    // The rules touching each group, in rule order: a rule's members normally lie in one group,
    // a dropped constraint can split them. Bucketed into one array (counting sort by group).
    HugeVector<std::pair<int32_t, int32_t>> touches;  // (group, rule)
    touches.reserve(rules_.size());
    for (size_t i = 0; i < rules_.size(); ++i) {
      const size_t first = touches.size();
      for (int32_t m : MembersOf(rules_[i])) {
        const int32_t g = group_for(m);
        bool seen = false;
        for (size_t k = first; k < touches.size() && !seen; ++k) seen = touches[k].first == g;
        if (!seen) touches.emplace_back(g, static_cast<int32_t>(i));
      }
    }
    for (const auto& [g, rule] : touches) ++groups_[static_cast<size_t>(g)].rules_count;
    uint32_t offset = 0;
    for (GroupState& g : groups_) {
      g.rules_first = offset;
      offset += g.rules_count;
      g.rules_count = 0;
    }
    group_rules_.resize(touches.size());
    for (const auto& [g, rule] : touches) {
      GroupState& group = groups_[static_cast<size_t>(g)];
      group_rules_[group.rules_first + group.rules_count++] = rule;
    }
    if (options_.collect_groups) reasons_.resize(groups_.size());
    // A method conflict needs two rules on one group.
    result_.notes.Reserve(touches.size() / 2, touches.size());
    // The groups are independent: in chunks, taken from the front by this thread and, when the
    // weights' thread is done with its own work, from the back by that one (see Handoff).
    const size_t chunks = (groups_.size() + kGroupChunk - 1) / kGroupChunk;
    claim_.store(uint64_t{chunks} << 32, std::memory_order_relaxed);
    ParamsPart front, back;
    front.notes = &result_.notes;
    const std::function<void()> help = [&] { ChooseChunks(/*front=*/false, &back); };
    const bool shared = helper_ && chunks > 1;
    if (shared) handoff_.Post(&help);
    ChooseChunks(/*front=*/true, &front);
    if (shared) handoff_.Collect();
    // This thread's chunks precede the other's: its error, if any, is the first in group order;
    // the other stops at its first and leaves the chunks before it to this one.
    QALIGN_RETURN_IF_ERROR(front.status);
    QALIGN_RETURN_IF_ERROR(back.status);
    for (ParamsPart* part : {&front, &back}) {
      result_.counters.method_conflicts += part->method_conflicts;
      result_.counters.groups_without_range += part->groups_without_range;
      result_.counters.params_set += part->params_set;
      result_.counters.params_changed += part->params_changed;
    }
    result_.counters.params_set_by_helper = back.params_set;
    // The other thread's conflicts, chunk by chunk in group order (it took them last first).
    for (auto chunk = back.chunk_notes.rbegin(); chunk != back.chunk_notes.rend(); ++chunk) {
      result_.notes.Append(*chunk);
    }
    return Status::Ok();
  }

  // What choosing the params of some groups gives besides the params: counters, method
  // conflicts (added to `notes`: the result's, or for chunks taken from the back, that chunk's own
  // notes, added to the result's in group order at the end), the first error.
  struct ParamsPart {
    AlignmentNotes* notes = nullptr;
    std::deque<AlignmentNotes> chunk_notes;  // one per chunk taken from the back, in that order
    int64_t method_conflicts = 0, groups_without_range = 0, params_set = 0, params_changed = 0;
    Status status;
    std::vector<int32_t> deciding;                       // scratch, reused across groups
    std::vector<AlignmentNotes::ConflictRule> named;     // scratch
  };
  static constexpr size_t kGroupChunk = 2048;

  // Takes chunks of groups_ from the front or the back of what is left (claim_ holds the next
  // front chunk in its low half and the end of the unclaimed ones in its high half) until none is
  // left or a group fails: then the front stops everyone, the back only itself.
  void ChooseChunks(bool front, ParamsPart* part) {
    while (true) {
      uint64_t claim = claim_.load(std::memory_order_relaxed);
      size_t chunk;
      uint64_t next;
      do {
        const uint64_t first = claim & 0xffffffffu, end = claim >> 32;
        if (first >= end) return;
        chunk = static_cast<size_t>(front ? first : end - 1);
        next = front ? claim + 1 : claim - (uint64_t{1} << 32);
      } while (!claim_.compare_exchange_weak(claim, next, std::memory_order_relaxed));
      if (!front) part->notes = &part->chunk_notes.emplace_back();
      const size_t begin = chunk * kGroupChunk;
      ChooseGroups(begin, std::min(groups_.size(), begin + kGroupChunk), part);
      if (!part->status.ok()) {
        if (front) claim_.store(0, std::memory_order_relaxed);
        return;
      }
    }
  }

  void ChooseGroups(size_t begin, size_t end, ParamsPart* part) {
    for (size_t k = begin; k < end; ++k) {
      if (k + kAhead < end) {
        // The root gets the params: its scale and offset share the TQC's second line. The ops
        // of the group's rules name the reason, when there is one to build.
        const GroupState& ahead = groups_[k + kAhead];
        __builtin_prefetch(&table_->Get(ahead.root)->scale, 1);
        if (options_.collect_groups) {
          for (int32_t ri : RulesOf(ahead)) Prefetch(rules_[static_cast<size_t>(ri)].op);
        }
      }
      part->status = ChooseSharedParams(&groups_[k], part);
      if (!part->status.ok()) return;
    }
  }

  std::span<const int32_t> RulesOf(const GroupState& g) const {
    return {group_rules_.data() + g.rules_first, g.rules_count};
  }

  Status ChooseSharedParams(GroupState* g, ParamsPart* part) {
    const std::span<const int32_t> group_rules = RulesOf(*g);
    const char* method = "";
    std::string reason;
    bool have = false;
    float scale = 0.0f;
    int64_t zero_point = 0;
    float lo = 0.0f, hi = 0.0f;
    bool has = false;

    if (g->fixed_pin != nullptr) {
      method = "fixed";
      reason = "fixed output range of " + OpLabel(*g->fixed_pin->source->port.op);
      scale = g->fixed_pin->scale;
      zero_point = g->fixed_pin->zero_point;
      have = true;
    } else {
      // The strongest rule source present decides; a BAKED member beats the target's own rules
      // but not an explicit user override.
      RuleSource best = RuleSource::kProfile;
      for (int32_t ri : group_rules) best = std::max(best, rules_[ri].rule->source);
      const bool overridden = !group_rules.empty() && best != RuleSource::kProfile;
      if (!overridden && g->baked_pin != nullptr) {
        method = "baked";
        reason = StrCat("already-quantized member ", DescribeTqc(*g->baked_pin->source));
        scale = g->baked_pin->scale;
        zero_point = g->baked_pin->zero_point;
        have = true;
      } else if (!group_rules.empty()) {
        AlignMethod chosen = AlignMethod::kNone;
        std::vector<int32_t>& deciding = part->deciding;
        deciding.clear();
        for (int32_t ri : group_rules) {
          if (rules_[ri].rule->source != best) continue;
          deciding.push_back(ri);
          if (MethodPriority(rules_[ri].rule->method) > MethodPriority(chosen)) {
            chosen = rules_[ri].rule->method;
          }
        }
        bool mixed = false;
        for (int32_t ri : deciding) mixed |= rules_[ri].rule->method != chosen;
        // The reason is read only by the group list; the note on mixed methods keeps the deciding
        // rules and is rendered when read.
        const bool want_reason = options_.collect_groups;
        if (mixed || want_reason) {
          std::vector<AlignmentNotes::ConflictRule>& named = part->named;
          named.clear();
          for (int32_t ri : deciding) {
            const RuleInstance& r = rules_[ri];
            named.push_back({r.op, r.rule->method, r.rule->source, r.rule->kind});
          }
          if (mixed) {
            ++part->method_conflicts;
            part->notes->AddMethodConflict(table_->Get(g->root), named, chosen);
          }
          if (want_reason) {
            SortByOpName(&named);
            reason.reserve(96);
            AppendRuleReason(&reason, named, chosen, mixed);
          }
        }
        AlignMethod effective = chosen;
        if (chosen == AlignMethod::kOptimal) {
          effective = AlignMethod::kLarge;
          if (want_reason) reason += "; optimal is not implemented yet, computed as large";
        }
        method = AlignMethodName(effective);
        if (effective == AlignMethod::kLarge) {
          // Union of ALL members' ranges (rule outputs included).
          has = g->has_range;
          lo = g->min;
          hi = g->max;
        } else {
          for (int32_t ri : deciding) {
            if (rules_[ri].rule->method != chosen) continue;
            const auto& ports = effective == AlignMethod::kOutput ? rules_[ri].config->outputs
                                                                  : rules_[ri].config->inputs;
            float a, b;
            if (!ports.empty() && ports[0] != nullptr && MemberRange(*ports[0], &a, &b)) {
              Widen(&has, &lo, &hi, a, b);
            }
          }
          if (!has && g->has_range) {
            has = true;
            lo = g->min;
            hi = g->max;
            if (want_reason) {
              reason += std::string("; the ") + method + " port has no range, used the union of members";
            }
            method = "large";
          }
        }
      } else {
        // Producer and consumers of one tensor: its own range (not reported, so no reason).
        has = g->has_range;
        lo = g->min;
        hi = g->max;
      }
      if (!have && has) {
        QALIGN_RETURN_IF_ERROR(
            Params(info_[static_cast<size_t>(g->root)].scheme, lo, hi, &scale, &zero_point));
        have = true;
      }
    }
    g->method = method;
    if (options_.collect_groups) reasons_[static_cast<size_t>(g - groups_.data())] = std::move(reason);
    if (!have) {
      ++part->groups_without_range;
      return Status::Ok();
    }
    ++part->params_set;
    if (SetRootParamsIfChanged(g->root, scale, zero_point)) ++part->params_changed;
    return Status::Ok();
  }

  // ComputeParams under scheme class k; a scheme JoinGather validated is not checked again.
  Status Params(uint16_t k, float min, float max, float* scale, int64_t* zero_point) const {
    const QuantScheme& scheme = *schemes_[k];
    if (scheme_valid_[k] && std::isfinite(min) && std::isfinite(max) && min <= max &&
        ComputeParamsUnchecked(scheme, min, max, scale, zero_point)) {
      return Status::Ok();
    }
    return ComputeParams(scheme, min, max, scale, zero_point);  // names what is wrong
  }

  // Step 5a: per-channel weights from their own data, symmetric under the weight scheme. Slices
  // of the list run on the pool (each weight is a group of its own, so they write disjoint TQCs);
  // an error is the one of the first failing weight in list order.
  Status DeriveWeightParams() {
    const size_t count = weights_.size();
    const size_t slices = weights_alone_ ? Slices(count * 8) : 1;  // a weight is ~8 TQCs' work
    std::vector<WeightSlice> parts(slices);
    ForSlices(slices, [&](size_t k) {
      DeriveWeights(count * k / slices, count * (k + 1) / slices, &parts[k]);
    });
    for (const WeightSlice& part : parts) {
      if (!part.status.ok()) return part.status;
      result_.counters.weights += part.weights;
      changed_derived_ |= part.changed;
    }
    return Status::Ok();
  }

  struct WeightSlice {
    Status status;
    int64_t weights = 0;
    bool changed = false;
  };

  // Derives weights_[begin, end) into out; stops at the first error.
  // A weight's data is read through its Variable (which holds the Tensor) and the Tensor's shape
  // and value buffers: three dependent loads per weight, started kAhead, 2 * kAhead and
  // 3 * kAhead weights early.
  void DeriveWeights(size_t begin, size_t end, WeightSlice* out) {
    std::vector<float> converted, mins, maxs, scales;
    std::vector<int64_t> zps;
    std::vector<uint8_t> seen;
    auto variable = [this](size_t k) { return weights_[k].tensor; };
    ParamArena::Slab slab(&table_->param_arena());
    for (size_t k = begin; k < end; ++k) {
      PrefetchAhead(k, 3 * kAhead, end, [&](size_t j) {
        // The Tensor inside the Variable: stored after its uses, up to the end of the object
        // (where the optional's flag is). Only a hint: the layout is not relied on.
        const Variable* v = variable(j);
        const uintptr_t last = reinterpret_cast<uintptr_t>(v) + sizeof(Variable) - 1;
        for (uintptr_t line = reinterpret_cast<uintptr_t>(&v->uses()) & ~uintptr_t{63};
             line <= last; line += 64) {
          __builtin_prefetch(reinterpret_cast<const void*>(line));
        }
      });
      PrefetchAhead(k, 2 * kAhead, end, [&](size_t j) {
        if (const Tensor* data = variable(j)->data(); data != nullptr) {
          __builtin_prefetch(data->shape().data());
          __builtin_prefetch(data->raw_data());
        }
      });
      PrefetchAhead(k, kAhead, end, [&](size_t j) {
        Prefetch(table_->Get(weights_[j].id));  // gets the params
      });
      const WeightItem& weight = weights_[k];
      TQC* t = table_->Get(weight.id);
      if (!variable(k)->is_parameter()) continue;
      const Tensor& data = *variable(k)->data();
      if (data.rank() == 0) continue;
      // Float weights are read in place; other types are converted once.
      std::span<const float> values;
      if (data.dtype() == DataType::kFloat) {
        values = data.values<float>();
      } else {
        auto as_floats = data.AsFloats();
        if (!as_floats.ok()) continue;
        converted = std::move(as_floats).value();
        values = converted;
      }
      int axis = weight.channel_axis < 0 ? 0 : weight.channel_axis;
      if (axis >= data.rank()) {
        out->status = InvalidArgumentError(DescribeTqc(*t), ": channel axis ", axis,
                                           " out of range for weight shape ",
                                           ShapeToString(data.shape()));
        return;
      }
      const int64_t channels = data.shape()[axis];
      int64_t outer = 1, inner = 1;
      for (int64_t d = 0; d < axis; ++d) outer *= data.shape()[d];
      for (int64_t d = axis + 1; d < data.rank(); ++d) inner *= data.shape()[d];
      mins.assign(static_cast<size_t>(channels), 0.0f);
      maxs.assign(static_cast<size_t>(channels), 0.0f);
      seen.assign(static_cast<size_t>(channels), 0);
      // Element i = (o * channels + c) * inner + k lies in channel c; visited in index order.
      const float* x = values.data();
      for (int64_t o = 0; o < outer; ++o) {
        for (int64_t c = 0; c < channels; ++c) {
          float& mn = mins[static_cast<size_t>(c)];
          float& mx = maxs[static_cast<size_t>(c)];
          for (int64_t k = 0; k < inner; ++k, ++x) {
            if (!seen[static_cast<size_t>(c)]) {
              mn = mx = *x;
              seen[static_cast<size_t>(c)] = 1;
            } else {
              mn = std::min(mn, *x);
              mx = std::max(mx, *x);
            }
          }
        }
      }
      const uint16_t scheme = weight.scheme;
      scales.resize(static_cast<size_t>(channels));
      zps.resize(static_cast<size_t>(channels));
      for (int64_t c = 0; c < channels; ++c) {
        Status s = Params(scheme, mins[c], maxs[c], &scales[c], &zps[c]);
        if (!s.ok()) {
          out->status = InvalidArgumentError(DescribeTqc(*t), " channel ", c, ": ", s.message());
          return;
        }
      }
      ++out->weights;
      // A weight that is a group of one is its own root: its params are set in place, without
      // looking the root up (SetParamsIfChanged's finds) or walking a ring of one.
      const bool changed = weights_alone_ ? SetOwnParamsIfChanged(t, scales, zps, &slab)
                                          : SetParamsIfChanged(table_, t, scales, zps);
      out->changed |= changed;
    }
  }

  // Values into a TQC's params: in the room they have, or else in storage from `slab`.
  template <typename T, uint32_t N>
  static void PutParams(std::span<const T> values, InlineVector<T, N>* params,
                        ParamArena::Slab* slab) {
    if (values.size() <= params->capacity()) {
      params->assign(values.begin(), values.end());
      return;
    }
    const std::span<T> storage = slab->Take<T>(values.size());
    std::ranges::copy(values, storage.begin());
    params->Adopt(storage);
  }

  // SetParamsIfChanged for a TQC that is the only member of its group.
  static bool SetOwnParamsIfChanged(TQC* t, std::span<const float> scale,
                                    std::span<const int64_t> offset, ParamArena::Slab* slab) {
    const bool changed = !std::ranges::equal(t->scale, scale) ||
                         !std::ranges::equal(t->offset, offset) ||
                         SettingParamsChangesState(t->state);
    if (!changed) return false;
    PutParams(scale, &t->scale, slab);
    PutParams(offset, &t->offset, slab);
    if (t->state != QuantState::kBaked && t->state != QuantState::kOverlapped) {
      t->state = QuantState::kActivated;
    }
    return true;
  }

  // Step 5b: bias params after alignment: scale[c] = input_scale * weight_scale[c], zero_point 0.
  void DeriveBiasParams() {
    for (int32_t id : bias_ids_) {
      TQC* b = table_->Get(id);
      if (b->role != TensorRole::kBias || !IsQuantizedState(b->state) || IsBaked(b->state)) continue;
      const OperationQuantConfig* config = table_->FindOp(b->port.op);
      if (config == nullptr || config->inputs.size() < 2) continue;
      TQC* in = config->inputs[0];
      TQC* w = config->inputs[1];
      if (in == nullptr || w == nullptr || !IsQuantizedState(in->state) ||
          !IsQuantizedState(w->state)) {
        continue;
      }
      const std::vector<float>& in_scale = table_->scale(in);
      const std::vector<float>& w_scale = table_->scale(w);
      if (in_scale.size() != 1 || w_scale.empty()) continue;
      size_t channels = w_scale.size();
      if (const Variable* v = b->port.tensor; v != nullptr && v->is_parameter()) {
        channels = static_cast<size_t>(std::max<int64_t>(v->data()->num_elements(), 1));
      }
      std::vector<float> scales(channels);
      for (size_t c = 0; c < channels; ++c) {
        scales[c] = in_scale[0] * w_scale[w_scale.size() == 1 ? 0 : std::min(c, w_scale.size() - 1)];
      }
      ++result_.counters.biases;
      if (SetParamsIfChanged(table_, b, std::move(scales), std::vector<int64_t>(channels, 0))) {
        changed_derived_ = true;
      }
    }
  }

  // Sorts requantizes_ by (tensor name, consumer name, producer name; no op sorts first). Tensor
  // names are unique in a graph and every edge's producer is its tensor's producer, so edges with
  // one tensor name have one producer too and the order is that of (tensor name, consumer name):
  // the producer's name is not read. Each edge's two names are copied once into one buffer as
  // "tensor\0consumer" (a name holds no NUL, so comparing these strings compares the pairs); the
  // edges are sorted by the first 8 bytes of that string as an integer and only runs that tie
  // there compare the rest. A comparison sort reading the names where they live missed the cache
  // on every comparison.
  // Sorting again a list already sorted (sorted_requantizes_ == its size) does nothing; equal keys
  // keep their order in the list, so sorting a prefix first and then the whole list gives the
  // order of sorting the whole list once.
  void SortRequantizes() {
    const size_t count = requantizes_.size();
    if (count < 2 || sorted_requantizes_ == count) return;
    sorted_requantizes_ = count;
    // In huge-page arrays (see core/huge_pages.h): a std::string grown name by name was copied at
    // each doubling and paged in afresh on every pass (a third of a 100k-op pass's page faults).
    HugeVector<char> names;
    names.reserve(count * kNameBytesPerEdge);
    auto append = [&names](const std::string& name) {
      names.insert(names.end(), name.begin(), name.end());
    };
    HugeVector<uint32_t> start(count + 1);
    for (size_t i = 0; i < count; ++i) {
      if (i + kAhead < count) {
        // The names live in their objects (short ones inline): start those loads early.
        const RequantizeEdge& ahead = requantizes_[i + kAhead];
        __builtin_prefetch(&ahead.tensor->name());
        if (ahead.consumer != nullptr) __builtin_prefetch(&ahead.consumer->name());
      }
      const RequantizeEdge& e = requantizes_[i];
      assert(e.producer == e.tensor->producer());  // what leaving the producer out relies on
      start[i] = static_cast<uint32_t>(names.size());
      append(e.tensor->name());
      names.push_back('\0');
      if (e.consumer != nullptr) append(e.consumer->name());
    }
    start[count] = static_cast<uint32_t>(names.size());
    auto key = [&](size_t i) {
      const std::string_view text(names.data() + start[i], start[i + 1] - start[i]);
      return text;
    };
    HugeVector<std::pair<uint64_t, uint32_t>> order(count);
    for (size_t i = 0; i < count; ++i) {
      uint64_t prefix = 0;
      const std::string_view text = key(i);
      for (size_t b = 0; b < 8; ++b) {
        prefix = (prefix << 8) | (b < text.size() ? static_cast<unsigned char>(text[b]) : 0u);
      }
      order[i] = {prefix, static_cast<uint32_t>(i)};
    }
    std::sort(order.begin(), order.end());
    for (size_t lo = 0; lo < count;) {
      size_t hi = lo + 1;
      while (hi < count && order[hi].first == order[lo].first) ++hi;
      if (hi - lo > 1) {
        std::sort(order.begin() + static_cast<ptrdiff_t>(lo), order.begin() + static_cast<ptrdiff_t>(hi),
                  [&](const auto& x, const auto& y) {
                    const int c = key(x.second).compare(key(y.second));
                    return c != 0 ? c < 0 : x.second < y.second;
                  });
      }
      lo = hi;
    }
    // Position k takes the edge at order[k].second: each cycle of that permutation is followed
    // once, moving the edges in place (a sorted copy of the list would be as large again).
    for (size_t k = 0; k < count; ++k) {
      if (order[k].second == k || order[k].second == kMoved) continue;
      RequantizeEdge held = std::move(requantizes_[k]);
      size_t to = k;
      for (size_t from = order[to].second; from != k; from = order[to].second) {
        requantizes_[to] = std::move(requantizes_[from]);
        order[to].second = kMoved;
        to = from;
      }
      requantizes_[to] = std::move(held);
      order[to].second = kMoved;
    }
  }
  static constexpr uint32_t kMoved = ~uint32_t{0};
  // Room reserved per edge for its two names (the buffer grows if they are longer).
  static constexpr size_t kNameBytesPerEdge = 40;

  void Finish() {
    // Requantize edges: one per (tensor, producer, consumer), sorted by names. The edges of
    // dropped constraints were made after the cascade edges, and follow them in the list.
    for (RequantizeEdge& e : dropped_requantizes_) requantizes_.push_back(std::move(e));
    SortRequantizes();
    // Duplicates are adjacent once sorted; the first of each run is kept, and the list is handed
    // over whole rather than copied.
    auto same = [](const RequantizeEdge& a, const RequantizeEdge& b) {
      return a.tensor == b.tensor && a.consumer == b.consumer && a.producer == b.producer;
    };
    requantizes_.erase(std::unique(requantizes_.begin(), requantizes_.end(), same),
                       requantizes_.end());
    result_.requantizes = std::move(requantizes_);
    result_.counters.requantizes = static_cast<int64_t>(result_.requantizes.size());

    // Reported groups: those a rule formed (ties or a fixed range). Groups no rule touched hold the
    // TQCs of one tensor and are the default; listing them would bury the interesting ones.
    std::vector<AlignmentGroup> listed;
    std::vector<const Variable*> tensors;
    for (const GroupState& g : groups_) {
      if (g.rules_count == 0 && g.fixed_pin == nullptr) continue;
      ++result_.counters.groups;
      if (!options_.collect_groups) {
        result_.counters.members += static_cast<int64_t>(table_->GroupSize(g.root));
        continue;
      }
      AlignmentGroup group;
      group.members = table_->Members(table_->Get(g.root));
      std::sort(group.members.begin(), group.members.end(), PortLess);
      tensors.clear();
      for (const TQC* m : group.members) tensors.push_back(m->port.tensor);
      std::sort(tensors.begin(), tensors.end());
      group.distinct_tensors =
          static_cast<int>(std::unique(tensors.begin(), tensors.end()) - tensors.begin());
      group.method = g.method;
      group.reason = std::move(reasons_[static_cast<size_t>(&g - groups_.data())]);
      result_.counters.members += static_cast<int64_t>(group.members.size());
      listed.push_back(std::move(group));
    }
    std::sort(listed.begin(), listed.end(), [](const AlignmentGroup& x, const AlignmentGroup& y) {
      return PortLess(x.members.front(), y.members.front());
    });
    for (size_t i = 0; i < listed.size(); ++i) listed[i].id = static_cast<int>(i);
    result_.groups = std::move(listed);
    AlignmentCounters& c = result_.counters;
    c.changed = c.links_made > 0 || c.params_changed > 0 || changed_derived_;
  }

  const Graph& graph_;
  const TargetProfile& profile_;
  const AlignmentOptions& options_;
  QuantConfigTable* table_;
  const bool force_overlap_;
  bool changed_derived_ = false;
  std::vector<Operation*> ops_;                         // graph order
  HugeVector<const OperationQuantConfig*> configs_;    // configs_[i] of ops_[i], or nullptr
  HugeVector<int32_t> type_ids_;                       // configs_[i]->type_id, or -1
  std::vector<std::optional<EffectiveRule>> rule_by_type_;  // by the table's op type id
  std::deque<EffectiveRule> node_rules_;                // rules of ops named by a node override
  HugeVector<RuleInstance> rules_;
  HugeVector<int32_t> rule_members_;                   // member ids of all rules_, back to back
  HugeVector<int32_t> slot_ids_;                       // port ids of every op, see AssignSlotIds
  HugeVector<uint32_t> slot_first_;                    // op i's ports start at slot_first_[i]
  HugeVector<uint32_t> slot_inputs_;                   // op i's number of input slots
  HugeVector<Variable*> tensor_;                       // by TQC id: its port's tensor
  TensorIndex producer_of_;
  HugeVector<TqcInfo> info_;                           // by TQC id
  std::vector<const QuantScheme*> schemes_;             // distinct schemes, TqcInfo::scheme
  std::vector<uint8_t> scheme_valid_;                   // by scheme class: valid and linear
  HugeVector<int32_t> baked_ids_, bias_ids_;
  HugeVector<WeightItem> weights_;                      // per-channel weights to derive
  bool weights_alone_ = true;                           // each is a group of one
  std::vector<Pin> pins_;
  std::vector<const Operation*> shape_readers_;         // see FindShapeReaders
  HugeVector<Constraint> constraints_;
  std::vector<RequantizeEdge> requantizes_;          // the cascade edges (CollectConstraints)
  std::vector<RequantizeEdge> dropped_requantizes_;  // the edges of dropped constraints
  size_t sorted_requantizes_ = 0;                    // requantizes_ is sorted when == its size
  std::atomic<bool> constraints_done_{false};        // AlignActivations made its cascade edges or ended
  HugeVector<GroupState> groups_;
  std::vector<std::string> reasons_;                    // by group, when the list is built
  HugeVector<int32_t> group_rules_;                    // rule indices, bucketed by group
  std::atomic<uint64_t> claim_{0};                    // see ChooseChunks
  Handoff handoff_;                                   // the weights' thread, once it is done
  bool helper_ = false;                               // ... which then serves handoff_
  AlignmentResult result_;
};

}  // namespace

std::string RequantizeEdge::reason() const {
  if (cascade_port < 0) return text;
  std::string why;
  why.reserve(160);
  why += "force_overlap off: ";
  why += consumer->type();
  why += " '";
  why += consumer->name();
  why += "''s rule ties input:";
  why += std::to_string(cascade_port);
  why += " but tensor '";
  why += tensor->name();
  why += "' has ";
  why += std::to_string(cascade_consumers);
  why += " consumer(s)";
  if (cascade_graph_output) why += " and is a graph output";
  why += "; the producer keeps its own params";
  return why;
}

std::string AlignmentNotes::operator[](size_t i) const {
  const Note& note = notes_[i];
  if (note.root == nullptr) return texts_[note.first];
  std::vector<ConflictRule> sorted(rules_.begin() + note.first,
                                   rules_.begin() + note.first + note.count);
  SortByOpName(&sorted);
  std::string text;
  text.reserve(256);
  text += "group of ";
  AppendDescribeTqc(&text, *note.root);
  text += ": ";
  AppendRuleReason(&text, sorted, note.chosen, /*mixed=*/true);
  return text;
}

void AlignmentNotes::push_back(std::string text) {
  Note& note = notes_.emplace_back();
  note.first = static_cast<uint32_t>(texts_.size());
  texts_.push_back(std::move(text));
}

void AlignmentNotes::Reserve(size_t conflicts, size_t rules) {
  notes_.reserve(notes_.size() + conflicts);
  rules_.reserve(rules_.size() + rules);
}

void AlignmentNotes::Append(const AlignmentNotes& other) {
  Reserve(other.notes_.size(), other.rules_.size());
  for (const Note& note : other.notes_) {
    if (note.root == nullptr) {
      push_back(other.texts_[note.first]);
    } else {
      AddMethodConflict(note.root, {other.rules_.data() + note.first, note.count}, note.chosen);
    }
  }
}

void AlignmentNotes::AddMethodConflict(const TQC* root, std::span<const ConflictRule> rules,
                                       AlignMethod chosen) {
  Note& note = notes_.emplace_back();
  note.root = root;
  note.first = static_cast<uint32_t>(rules_.size());
  note.count = static_cast<uint32_t>(rules.size());
  note.chosen = chosen;
  rules_.insert(rules_.end(), rules.begin(), rules.end());
}

StatusOr<AlignmentResult> RunAlignmentPass(const Graph& graph, const TargetProfile& profile,
                                           const AlignmentOptions& options,
                                           QuantConfigTable* table) {
  if (table == nullptr) return InvalidArgumentError("alignment: no quantization table");
  return AlignmentPass(graph, profile, options, table).Run();
}

}  // namespace qalign
