// The quantization alignment pass: constraints, cascade control, groups, params, derived params.
#include "passes/alignment_pass.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include "core/file_util.h"
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

std::vector<TQC*> RuleMembers(const OperationQuantConfig& config, RuleKind kind) {
  std::vector<TQC*> members;
  auto add = [&members](TQC* t) {
    if (t != nullptr && IsJoinable(*t)) members.push_back(t);
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
  return members;
}

// ---------------------------------------------------------------- the pass

namespace {

// "Concat 'cat1'", like Operation::Describe() but without a string stream.
std::string OpLabel(const Operation& op) { return op.type() + " '" + op.name() + "'"; }

bool IsBaked(QuantState s) { return s == QuantState::kBaked || s == QuantState::kPassiveBaked; }

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

// One constraint: TQCs a and b must share params.
struct Constraint {
  TQC* a = nullptr;
  TQC* b = nullptr;
  Operation* rule_op = nullptr;  // the op whose rule ties them; nullptr for a default edge
};

// Sort key for conflict resolution: rule ties first (by op name and port), then default edges (by
// tensor and consumer port), so a conflict drops the same constraint whatever the storage order.
bool ConstraintLess(const Constraint& x, const Constraint& y) {
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
  std::vector<int32_t> parent_;
};

struct RuleInstance {
  Operation* op = nullptr;
  const OperationQuantConfig* config = nullptr;
  EffectiveRule rule;
  std::vector<TQC*> members;
};

// Everything the pass knows about one final group while choosing its params.
struct GroupState {
  int32_t root = -1;
  std::vector<int32_t> rules;  // indices into the rule instances
  const Pin* fixed_pin = nullptr;
  const Pin* baked_pin = nullptr;
  bool has_range = false;
  float min = 0.0f;
  float max = 0.0f;
  // Set only for groups a rule formed (the reported ones).
  const char* method = "";
  std::string reason;
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

// Sets a group's params, reporting whether they changed.
bool SetParamsIfChanged(QuantConfigTable* table, const TQC* member, std::vector<float> scale,
                        std::vector<int64_t> offset) {
  const TQC* root = table->Root(member);
  const bool changed = table->scale(root) != scale || table->offset(root) != offset ||
                       (root->state != QuantState::kActivated && !IsBaked(root->state) &&
                        root->state != QuantState::kOverlapped);
  if (changed) table->SetGroupParams(member, std::move(scale), std::move(offset));
  return changed;
}

class AlignmentPass {
 public:
  AlignmentPass(const Graph& graph, const TargetProfile& profile, const AlignmentOptions& options,
                QuantConfigTable* table)
      : graph_(graph), profile_(profile), options_(options), table_(table) {}

  StatusOr<AlignmentResult> Run() {
    QALIGN_RETURN_IF_ERROR(ValidateOverrides());
    QALIGN_RETURN_IF_ERROR(CollectRules());
    CollectConstraints();
    QALIGN_RETURN_IF_ERROR(FormGroups());
    QALIGN_RETURN_IF_ERROR(ChooseParams());
    if (options_.derive_weight_and_bias) {
      QALIGN_RETURN_IF_ERROR(DeriveWeightParams());
      DeriveBiasParams();
    }
    Finish();
    return std::move(result_);
  }

 private:
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

  // Step 1a: the effective rule of every quantized op.
  Status CollectRules() {
    force_overlap_ = options_.force_overlap.value_or(profile_.force_overlap);
    for (Operation* op : graph_.operations()) {
      const OperationQuantConfig* config = table_->FindOp(op);
      if (config == nullptr) continue;
      QALIGN_ASSIGN_OR_RETURN(EffectiveRule rule, ResolveRule(*op, profile_, options_));
      if (!rule.present) continue;
      if (rule.kind == RuleKind::kFixedOutput) {
        bool any = false;
        for (TQC* out : config->outputs) {
          if (out == nullptr || !IsJoinable(*out)) continue;
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
          pins_.emplace(out->id, pin);
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
      std::vector<TQC*> members = RuleMembers(*config, rule.kind);
      // A rule needs two quantized ports to tie, except an inputs rule whose method takes the
      // params from a port outside the group (`output`): its single input still adopts them.
      const bool single_ok = members.size() == 1 && rule.kind == RuleKind::kShareInputs &&
                             rule.method == AlignMethod::kOutput;
      if (members.size() < 2 && !single_ok) continue;
      RuleInstance instance;
      instance.op = op;
      instance.config = config;
      instance.rule = rule;
      instance.members = std::move(members);
      rules_.push_back(std::move(instance));
      ++result_.counters.rule_ops;
    }
    // BAKED members pin their group to their own params.
    for (TQC* t : table_->all()) {
      if (!IsBaked(t->state) || !IsJoinable(*t) || t->scale.size() != 1 || t->offset.size() != 1) {
        continue;
      }
      Pin pin;
      pin.scale = t->scale[0];
      pin.zero_point = t->offset[0];
      pin.source = t;
      pins_.emplace(t->id, pin);
    }
    return Status::Ok();
  }

  // Step 1b + 2: rule ties and default producer -> consumer edges, with cascade control.
  void CollectConstraints() {
    relaxed_.assign(table_->size(), 0);
    for (const RuleInstance& r : rules_) {
      for (TQC* m : r.members) {
        if (!m->port.is_input || force_overlap_) continue;
        Variable* t = m->port.tensor;
        size_t others = 0;
        for (Operation* consumer : t->consumers()) {
          if (consumer != r.op && !ReadsOnlyShape(*consumer)) ++others;
        }
        if (others > 0 || t->is_graph_output()) relaxed_[m->id] = 1;
      }
    }
    for (const RuleInstance& r : rules_) {
      for (size_t i = 1; i < r.members.size(); ++i) {
        constraints_.push_back({r.members[0], r.members[i], r.op});
      }
    }
    // Default sharing: every consumer-side TQC of a tensor shares the producer-side TQC; when the
    // producer side is not quantized, the consumers share one quantization among themselves,
    // anchored at the first consumer port by name (so conflicts replay the same constraints
    // whatever the storage order).
    std::unordered_map<const Variable*, TQC*> anchor;
    for (Operation* op : graph_.operations()) {
      const OperationQuantConfig* config = table_->FindOp(op);
      if (config == nullptr) continue;
      for (TQC* c : config->inputs) {
        if (c == nullptr || !IsJoinable(*c) || relaxed_[c->id]) continue;
        TQC* p = ProducerTqc(c->port.tensor);
        if (p != nullptr && IsJoinable(*p)) continue;
        auto [it, inserted] = anchor.emplace(c->port.tensor, c);
        if (!inserted && PortLess(c, it->second)) it->second = c;
      }
    }
    for (Operation* op : graph_.operations()) {
      const OperationQuantConfig* config = table_->FindOp(op);
      if (config == nullptr) continue;
      for (TQC* c : config->inputs) {
        if (c == nullptr || !IsJoinable(*c)) continue;
        Variable* t = c->port.tensor;
        TQC* p = ProducerTqc(t);
        const bool producer_joins = p != nullptr && IsJoinable(*p);
        if (relaxed_[c->id]) {
          if (producer_joins) {
            size_t consumers = 0;
            for (Operation* consumer : t->consumers()) {
              if (!ReadsOnlyShape(*consumer)) ++consumers;
            }
            RequantizeEdge edge;
            edge.tensor = t;
            edge.producer = t->producer();
            edge.consumer = op;
            // Plain concatenation: this runs once per relaxed edge on million-op graphs.
            edge.reason = "force_overlap off: " + OpLabel(*op) + "'s rule ties input:" +
                          std::to_string(c->port.index) + " but tensor '" + t->name() + "' has " +
                          std::to_string(consumers) + " consumer(s)" +
                          (t->is_graph_output() ? " and is a graph output" : "") +
                          "; the producer keeps its own params";
            requantizes_.push_back(std::move(edge));
          }
          continue;
        }
        if (producer_joins) {
          constraints_.push_back({p, c, nullptr});
        } else {
          TQC* a = anchor.at(t);
          if (a != c) constraints_.push_back({a, c, nullptr});
        }
      }
    }
    result_.counters.constraints = static_cast<int64_t>(constraints_.size());
  }

  TQC* ProducerTqc(const Variable* t) const {
    if (t->producer() == nullptr) return nullptr;
    const OperationQuantConfig* pc = table_->FindOp(t->producer());
    if (pc == nullptr) return nullptr;
    const size_t index = static_cast<size_t>(t->producer_index());
    return index < pc->outputs.size() ? pc->outputs[index] : nullptr;
  }

  // Step 3: union. Look ahead with a scratch partition: groups without a conflict (the usual case)
  // are linked in any order, since the partition does not depend on it; groups with two
  // different pinned values or two schemes are replayed in canonical order, dropping (and
  // recording) each constraint that would join incompatible parts.
  Status FormGroups() {
    const size_t n = table_->size();
    ScratchSets look(n);
    for (const Constraint& c : constraints_) look.Union(c.a->id, c.b->id);
    std::vector<int32_t> scheme_rep(n, -1);
    std::unordered_map<int32_t, const Pin*> pin_rep;
    std::vector<uint8_t> conflicted(n, 0);
    auto visit = [&](const TQC* t) {
      const int32_t r = look.Find(t->id);
      if (scheme_rep[r] < 0) {
        scheme_rep[r] = t->id;
      } else if (!(table_->Get(scheme_rep[r])->scheme == t->scheme)) {
        conflicted[r] = 1;
      }
      if (auto it = pins_.find(t->id); it != pins_.end()) {
        auto [pit, inserted] = pin_rep.emplace(r, &it->second);
        if (!inserted && !pit->second->Same(it->second)) conflicted[r] = 1;
      }
    };
    for (const Constraint& c : constraints_) {
      visit(c.a);
      visit(c.b);
    }
    std::vector<Constraint> replay;
    for (const Constraint& c : constraints_) {
      if (conflicted[look.Find(c.a->id)]) {
        replay.push_back(c);
        continue;
      }
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
      if (auto it = pins_.find(t->id); it != pins_.end()) pin_of.emplace(r, &it->second);
      return r;
    };
    for (const Constraint& c : replay) {
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
      QALIGN_RETURN_IF_ERROR(LinkTable(c));
    }
    return Status::Ok();
  }

  Status LinkTable(const Constraint& c) {
    auto linked = table_->Link(c.a, c.b);
    if (!linked.ok()) {
      return InternalError("alignment: ", linked.status().message());
    }
    if (*linked) ++result_.counters.links_made;
    return Status::Ok();
  }

  void RecordDroppedConstraint(const Constraint& c, const std::string& why) {
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
    edge.reason = why;
    result_.notes.push_back(StrCat("constraint ", DescribeTqc(*c.a), " ~ ", DescribeTqc(*c.b),
                                   " dropped: ", why));
    requantizes_.push_back(std::move(edge));
  }

  // Step 4: params per group.
  Status ChooseParams() {
    const size_t n = table_->size();
    std::vector<int32_t> group_of_root(n, -1);
    auto group_for = [&](const TQC* t) -> GroupState& {
      const int32_t r = table_->Root(t)->id;
      int32_t& g = group_of_root[r];
      if (g < 0) {
        g = static_cast<int32_t>(groups_.size());
        groups_.push_back(GroupState{});
        groups_.back().root = r;
      }
      return groups_[g];
    };
    for (TQC* t : table_->all()) {
      if (!IsJoinable(*t)) continue;
      GroupState& g = group_for(t);
      float lo, hi;
      if (MemberRange(*t, &lo, &hi)) Widen(&g.has_range, &g.min, &g.max, lo, hi);
      if (auto it = pins_.find(t->id); it != pins_.end()) {
        const Pin* pin = &it->second;
        const Pin*& slot = pin->fixed ? g.fixed_pin : g.baked_pin;
        if (slot == nullptr || PortLess(pin->source, slot->source)) slot = pin;
      }
    }
    for (size_t i = 0; i < rules_.size(); ++i) {
      // A rule's members normally lie in one group; a dropped constraint can split them.
      std::vector<int32_t> seen;
      for (TQC* m : rules_[i].members) {
        GroupState& g = group_for(m);
        if (std::find(seen.begin(), seen.end(), g.root) != seen.end()) continue;
        seen.push_back(g.root);
        g.rules.push_back(static_cast<int32_t>(i));
      }
    }
    for (GroupState& g : groups_) QALIGN_RETURN_IF_ERROR(ChooseSharedParams(&g));
    return Status::Ok();
  }

  Status ChooseSharedParams(GroupState* g) {
    const TQC* root = table_->Get(g->root);
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
      for (int32_t ri : g->rules) best = std::max(best, rules_[ri].rule.source);
      const bool overridden = !g->rules.empty() && best != RuleSource::kProfile;
      if (!overridden && g->baked_pin != nullptr) {
        method = "baked";
        reason = StrCat("already-quantized member ", DescribeTqc(*g->baked_pin->source));
        scale = g->baked_pin->scale;
        zero_point = g->baked_pin->zero_point;
        have = true;
      } else if (!g->rules.empty()) {
        AlignMethod chosen = AlignMethod::kNone;
        std::vector<int32_t> deciding;
        for (int32_t ri : g->rules) {
          if (rules_[ri].rule.source != best) continue;
          deciding.push_back(ri);
          if (MethodPriority(rules_[ri].rule.method) > MethodPriority(chosen)) {
            chosen = rules_[ri].rule.method;
          }
        }
        // Sort the deciding ops by name so the reason reads the same whatever the storage order.
        std::sort(deciding.begin(), deciding.end(), [this](int32_t x, int32_t y) {
          return rules_[x].op->name() < rules_[y].op->name();
        });
        bool mixed = false;
        for (int32_t ri : deciding) mixed |= rules_[ri].rule.method != chosen;
        const RuleInstance& first = rules_[deciding.front()];
        reason = OpLabel(*first.op) + " " + SourceLabel(first.rule.source) + " (" +
                 KindLabel(first.rule.kind) + ")";
        if (deciding.size() > 1) reason += StrCat(" and ", deciding.size() - 1, " more");
        if (mixed) {
          ++result_.counters.method_conflicts;
          std::string wants;
          for (int32_t ri : deciding) {
            wants += StrCat(wants.empty() ? "" : ", ", rules_[ri].op->Describe(), " wants ",
                            AlignMethodName(rules_[ri].rule.method));
          }
          reason += StrCat("; methods conflict (", wants, "), chose ", AlignMethodName(chosen),
                           " by priority large > output > input");
          result_.notes.push_back(StrCat("group of ", DescribeTqc(*root), ": ", reason));
        }
        AlignMethod effective = chosen;
        if (chosen == AlignMethod::kOptimal) {
          effective = AlignMethod::kLarge;
          reason += "; optimal is not implemented yet, computed as large";
        }
        method = AlignMethodName(effective);
        if (effective == AlignMethod::kLarge) {
          // Union of ALL members' ranges (rule outputs included).
          has = g->has_range;
          lo = g->min;
          hi = g->max;
        } else {
          for (int32_t ri : deciding) {
            if (rules_[ri].rule.method != chosen) continue;
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
            reason += std::string("; the ") + method + " port has no range, used the union of members";
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
        QALIGN_RETURN_IF_ERROR(ComputeParams(root->scheme, lo, hi, &scale, &zero_point));
        have = true;
      }
    }
    g->method = method;
    g->reason = std::move(reason);
    if (!have) {
      ++result_.counters.groups_without_range;
      return Status::Ok();
    }
    ++result_.counters.params_set;
    if (SetParamsIfChanged(table_, root, {scale}, {zero_point})) ++result_.counters.params_changed;
    return Status::Ok();
  }

  // Step 5a: per-channel weights from their own data, symmetric under the weight scheme.
  Status DeriveWeightParams() {
    for (TQC* t : table_->all()) {
      if (t->role != TensorRole::kWeight || !t->per_channel() || t->floating()) continue;
      if (!IsQuantizedState(t->state) || IsBaked(t->state) || t->state == QuantState::kOverlapped) {
        continue;
      }
      const Variable* v = t->port.tensor;
      if (v == nullptr || !v->is_parameter()) continue;
      const Tensor& data = *v->data();
      auto values = data.AsFloats();
      if (!values.ok() || data.rank() == 0) continue;
      int axis = t->channel_axis < 0 ? 0 : t->channel_axis;
      if (axis >= data.rank()) {
        return InvalidArgumentError(DescribeTqc(*t), ": channel axis ", axis,
                                    " out of range for weight shape ",
                                    ShapeToString(data.shape()));
      }
      const int64_t channels = data.shape()[axis];
      int64_t inner = 1;
      for (int64_t d = axis + 1; d < data.rank(); ++d) inner *= data.shape()[d];
      std::vector<float> mins(channels, 0.0f), maxs(channels, 0.0f);
      std::vector<uint8_t> seen(channels, 0);
      for (size_t i = 0; i < values->size(); ++i) {
        const int64_t c = (static_cast<int64_t>(i) / inner) % channels;
        const float x = (*values)[i];
        if (!seen[c]) {
          mins[c] = maxs[c] = x;
          seen[c] = 1;
        } else {
          mins[c] = std::min(mins[c], x);
          maxs[c] = std::max(maxs[c], x);
        }
      }
      std::vector<float> scales(channels);
      std::vector<int64_t> zps(channels);
      for (int64_t c = 0; c < channels; ++c) {
        Status s = ComputeParams(t->scheme, mins[c], maxs[c], &scales[c], &zps[c]);
        if (!s.ok()) return InvalidArgumentError(DescribeTqc(*t), " channel ", c, ": ", s.message());
      }
      ++result_.counters.weights;
      if (SetParamsIfChanged(table_, t, std::move(scales), std::move(zps))) changed_derived_ = true;
    }
    return Status::Ok();
  }

  // Step 5b: bias params after alignment: scale[c] = input_scale * weight_scale[c], zero_point 0.
  void DeriveBiasParams() {
    for (TQC* b : table_->all()) {
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

  void Finish() {
    // Requantize edges: one per (tensor, producer, consumer), sorted by names.
    static const std::string kNoName;
    auto name = [](const Operation* op) -> const std::string& { return op ? op->name() : kNoName; };
    auto less = [&](const RequantizeEdge& x, const RequantizeEdge& y) {
      if (int c = x.tensor->name().compare(y.tensor->name()); c != 0) return c < 0;
      if (int c = name(x.consumer).compare(name(y.consumer)); c != 0) return c < 0;
      return name(x.producer) < name(y.producer);
    };
    std::sort(requantizes_.begin(), requantizes_.end(), less);
    for (RequantizeEdge& e : requantizes_) {
      const RequantizeEdge* last = result_.requantizes.empty() ? nullptr : &result_.requantizes.back();
      if (last != nullptr && last->tensor == e.tensor && last->consumer == e.consumer &&
          last->producer == e.producer) {
        continue;
      }
      result_.requantizes.push_back(std::move(e));
    }
    result_.counters.requantizes = static_cast<int64_t>(result_.requantizes.size());

    // Reported groups: those a rule formed (ties or a fixed range). Groups no rule touched hold the
    // TQCs of one tensor and are the default; listing them would bury the interesting ones.
    std::vector<AlignmentGroup> listed;
    for (const GroupState& g : groups_) {
      if (g.rules.empty() && g.fixed_pin == nullptr) continue;
      ++result_.counters.groups;
      if (!options_.collect_groups) {
        result_.counters.members += static_cast<int64_t>(table_->Members(table_->Get(g.root)).size());
        continue;
      }
      AlignmentGroup group;
      group.members = table_->Members(table_->Get(g.root));
      std::sort(group.members.begin(), group.members.end(), PortLess);
      std::unordered_set<const Variable*> tensors;
      for (const TQC* m : group.members) tensors.insert(m->port.tensor);
      group.distinct_tensors = static_cast<int>(tensors.size());
      group.method = g.method;
      group.reason = g.reason;
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
  bool force_overlap_ = true;
  bool changed_derived_ = false;
  std::vector<RuleInstance> rules_;
  std::unordered_map<int32_t, Pin> pins_;
  std::vector<uint8_t> relaxed_;
  std::vector<Constraint> constraints_;
  std::vector<RequantizeEdge> requantizes_;
  std::vector<GroupState> groups_;
  AlignmentResult result_;
};

}  // namespace

StatusOr<AlignmentResult> RunAlignmentPass(const Graph& graph, const TargetProfile& profile,
                                           const AlignmentOptions& options,
                                           QuantConfigTable* table) {
  if (table == nullptr) return InvalidArgumentError("alignment: no quantization table");
  return AlignmentPass(graph, profile, options, table).Run();
}

}  // namespace qalign
