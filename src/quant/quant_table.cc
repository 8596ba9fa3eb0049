// QuantConfigTable: TQC storage, per-op configs, Link and SetGroupParams.
#include "quant/quant_table.h"

#include <algorithm>
#include <string>
#include <utility>

namespace qalign {

TQC* QuantConfigTable::Create(const Port& port, TensorRole role, const QuantScheme& scheme,
                              QuantState state) {
  if (num_tqcs_ % kTqcsPerBlock == 0) tqc_blocks_.push_back(std::make_unique<TQC[]>(kTqcsPerBlock));
  TQC& tqc = *Get(static_cast<int32_t>(num_tqcs_++));
  tqc.id = union_find_.Add();
  tqc.port = port;
  tqc.role = role;
  tqc.scheme = scheme;
  tqc.state = state;
  next_member_.push_back(tqc.id);  // a ring of one
  if (port.op != nullptr && port.index >= 0) {
    OperationQuantConfig& config = ForOp(port.op);
    std::vector<TQC*>& slots = port.is_input ? config.inputs : config.outputs;
    const size_t index = static_cast<size_t>(port.index);
    if (slots.size() <= index) slots.resize(index + 1, nullptr);
    slots[index] = &tqc;
  }
  return &tqc;
}

std::vector<TQC*> QuantConfigTable::all() {
  std::vector<TQC*> out;
  out.reserve(num_tqcs_);
  for (size_t i = 0; i < num_tqcs_; ++i) out.push_back(Get(static_cast<int32_t>(i)));
  return out;
}

OperationQuantConfig& QuantConfigTable::ForOp(Operation* op) {
  auto [it, inserted] = op_index_.emplace(op, op_configs_.size());
  if (!inserted) return op_configs_[it->second];
  OperationQuantConfig& config = op_configs_.emplace_back();
  config.op = op;
  auto [type, added] = op_type_ids_.emplace(op->type(), static_cast<int32_t>(op_types_.size()));
  if (added) op_types_.push_back(op->type());
  config.type_id = type->second;
  config.inputs.assign(op->inputs().size(), nullptr);
  config.outputs.assign(op->outputs().size(), nullptr);
  return config;
}

const OperationQuantConfig* QuantConfigTable::FindOp(const Operation* op) const {
  auto it = op_index_.find(op);
  return it == op_index_.end() ? nullptr : &op_configs_[it->second];
}

std::vector<const OperationQuantConfig*> QuantConfigTable::FindOps(
    const std::vector<Operation*>& ops) const {
  std::vector<const OperationQuantConfig*> configs;
  configs.reserve(ops.size());
  size_t k = 0;
  for (const Operation* op : ops) {
    const bool next = k < op_configs_.size() && op_configs_[k].op == op;
    configs.push_back(next ? &op_configs_[k++] : nullptr);
  }
  // Every config met in order: the ops skipped have none. Otherwise look each one up.
  for (size_t i = 0; k != op_configs_.size() && i < ops.size(); ++i) configs[i] = FindOp(ops[i]);
  return configs;
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

}  // namespace

QuantState QuantConfigTable::PassiveState(QuantState state, const TQC& root) {
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
  const int32_t root_id = union_find_.LinkRoots(ra, rb);
  const int32_t child_id = root_id == ra ? rb : ra;
  // The old root that lost its place becomes passive. Its former members only change state when
  // the new root differs from the old one in having params (PASSIVE vs PASSIVE_INIT); then that
  // ring is walked. Each walk raises the rank of the members' root, so a member is walked at most
  // log2(n) + 1 times over all links.
  const TQC& root = *Get(root_id);
  TQC& child = *Get(child_id);
  const bool params_differ = root.scale.empty() != child.scale.empty();
  child.state = PassiveState(child.state, root);
  if (params_differ) {
    for (int32_t m = next_member_[static_cast<size_t>(child_id)]; m != child_id;
         m = next_member_[static_cast<size_t>(m)]) {
      TQC& member = *Get(m);
      member.state = PassiveState(member.state, root);
    }
  }
  // Splice the two rings into one.
  std::swap(next_member_[static_cast<size_t>(root_id)],
            next_member_[static_cast<size_t>(child_id)]);
  return true;
}

bool QuantConfigTable::SameGroup(const TQC* a, const TQC* b) {
  return union_find_.Find(a->id) == union_find_.Find(b->id);
}

std::vector<std::vector<TQC*>> QuantConfigTable::Groups() {
  // slot[root] is the group's index, assigned in increasing root id.
  const size_t n = num_tqcs_;
  std::vector<int32_t> slot(n, -1);
  int32_t groups = 0;
  for (size_t i = 0; i < n; ++i) {
    if (union_find_.Find(static_cast<int32_t>(i)) == static_cast<int32_t>(i)) slot[i] = groups++;
  }
  std::vector<std::vector<TQC*>> out(static_cast<size_t>(groups));
  for (size_t i = 0; i < n; ++i) {
    const size_t root = static_cast<size_t>(union_find_.Find(static_cast<int32_t>(i)));
    out[static_cast<size_t>(slot[root])].push_back(Get(static_cast<int32_t>(i)));
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

size_t QuantConfigTable::GroupSize(const TQC* tqc) const {
  size_t count = 1;
  for (int32_t m = next_member_[static_cast<size_t>(tqc->id)]; m != tqc->id;
       m = next_member_[static_cast<size_t>(m)]) {
    ++count;
  }
  return count;
}

bool QuantConfigTable::SetGroupParams(const TQC* member, std::span<const float> scale,
                                      std::span<const int64_t> zero_points) {
  TQC* root = Root(member);
  const bool keeps_state = root->state == QuantState::kActivated || IsBakedState(root->state) ||
                           root->state == QuantState::kOverlapped;
  if (keeps_state && std::ranges::equal(root->scale, scale) &&
      std::ranges::equal(root->zero_point, zero_points)) {
    return false;
  }
  root->scale.assign(scale.begin(), scale.end());
  root->zero_point.assign(zero_points.begin(), zero_points.end());
  if (root->state != QuantState::kBaked && root->state != QuantState::kOverlapped) {
    root->state = QuantState::kActivated;
  }
  for (int32_t m = next_member_[static_cast<size_t>(root->id)]; m != root->id;
       m = next_member_[static_cast<size_t>(m)]) {
    TQC& t = *Get(m);
    if (t.state == QuantState::kPassiveInit) t.state = QuantState::kPassive;
  }
  return true;
}

}  // namespace qalign
