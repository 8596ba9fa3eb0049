// VerifyAlignment: rules, fixed ranges, producer/consumer edges, membership, schemes, cycles, bias.
#include "passes/alignment_verifier.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <span>
#include <tuple>

#include "quant/bias_params.h"

namespace qalign {
namespace {

bool NearlyEqual(float a, float b) {
  return std::fabs(a - b) <= 1e-6f * std::max(std::fabs(a), std::fabs(b)) + 1e-30f;
}

// Same bit width (an 8-bit and a 16-bit port never share params, even with equal numbers) and
// the same (scale, zero_point).
bool SameParams(QuantConfigTable& table, const TQC* a, const TQC* b) {
  if (a->scheme.num_bits != b->scheme.num_bits) return false;
  const auto& sa = table.scale(a);
  const auto& sb = table.scale(b);
  if (sa.empty() || sa.size() != sb.size() || table.zero_point(a) != table.zero_point(b)) return false;
  for (size_t i = 0; i < sa.size(); ++i) {
    if (!NearlyEqual(sa[i], sb[i])) return false;
  }
  return true;
}

}  // namespace

std::vector<AlignmentViolation> VerifyAlignment(const Graph& graph, QuantConfigTable& table,
                                                const TargetProfile& profile,
                                                const std::vector<RequantizeEdge>& requantizes,
                                                const AlignmentOptions& options) {
  std::vector<AlignmentViolation> out;
  auto add = [&out](const char* check, std::string message) {
    out.push_back({check, std::move(message)});
  };
  // (tensor, producer, consumer) of every recorded requantize, sorted for binary search (one
  // array instead of a tree node per edge).
  using Edge = std::tuple<const Variable*, const Operation*, const Operation*>;
  std::vector<Edge> edges;
  edges.reserve(requantizes.size());
  for (const RequantizeEdge& e : requantizes) edges.emplace_back(e.tensor, e.producer, e.consumer);
  std::sort(edges.begin(), edges.end());
  auto relaxed_at = [&edges](const Variable* t, const Operation* op) {
    // A requantize on tensor t with op as its consumer (an input edge) or as its producer.
    for (auto it = std::lower_bound(edges.begin(), edges.end(), Edge{t, nullptr, nullptr});
         it != edges.end() && std::get<0>(*it) == t; ++it) {
      if (std::get<2>(*it) == op || std::get<1>(*it) == op) return true;
    }
    return false;
  };

  // Cycles first: the other checks follow parent chains.
  const UnionFind& uf = table.union_find();
  bool cyclic = false;
  for (size_t id = 0; id < uf.size(); ++id) {
    int32_t x = static_cast<int32_t>(id);
    size_t steps = 0;
    while (uf.parent(x) != x && steps <= uf.size()) {
      x = uf.parent(x);
      ++steps;
    }
    if (steps > uf.size()) {
      add("cycle", StrCat("union-find parent chain of ", DescribeTqc(*table.Get(static_cast<int32_t>(id))),
                          " never reaches a root"));
      cyclic = true;
    }
  }
  if (cyclic) return out;

  std::vector<TQC*> members;
  for (Operation* op : graph.operations()) {
    const OperationQuantConfig* config = table.FindOp(op);
    if (config == nullptr) continue;
    const StatusOr<EffectiveRule> rule = ResolveRule(*op, profile, options);
    if (!rule.ok()) {
      add("rule", rule.status().message());
      continue;
    }
    if (rule->present && rule->kind == RuleKind::kFixedOutput) {
      for (TQC* o : config->outputs) {
        if (o == nullptr || !IsJoinable(*o)) continue;
        const auto& s = table.scale(o);
        const auto& z = table.zero_point(o);
        if (s.size() != 1 || z.size() != 1 || !NearlyEqual(s[0], rule->fixed_scale) ||
            z[0] != rule->fixed_zero_point) {
          add("fixed", StrCat(DescribeTqc(*o), " must have the fixed params (", rule->fixed_scale,
                              ", ", rule->fixed_zero_point, ") but has (",
                              s.empty() ? std::string("none") : StrCat(s[0]), ", ",
                              z.empty() ? std::string("none") : StrCat(z[0]), ")"));
        }
      }
    } else if (rule->present && rule->method != AlignMethod::kNone) {
      members = RuleMembers(*config, rule->kind);
      for (size_t i = 1; i < members.size(); ++i) {
        if (table.SameGroup(members[0], members[i])) continue;
        if (relaxed_at(members[i]->port.tensor, op) || relaxed_at(members[0]->port.tensor, op)) {
          continue;
        }
        add("rule", StrCat(op->Describe(), ": ", members[i]->port.ToString(), " (tensor '",
                           members[i]->port.tensor->name(), "') does not share params with ",
                           members[0]->port.ToString(), " (tensor '",
                           members[0]->port.tensor->name(), "') and no requantize is recorded"));
      }
    }
    // Producer -> consumer edges.
    for (TQC* c : config->inputs) {
      if (c == nullptr || !IsJoinable(*c)) continue;
      const Variable* t = c->port.tensor;
      const Operation* producer = t->producer();
      if (producer == nullptr) continue;
      const OperationQuantConfig* pc = table.FindOp(producer);
      if (pc == nullptr) continue;
      const size_t pi = static_cast<size_t>(t->producer_index());
      const TQC* p = pi < pc->outputs.size() ? pc->outputs[pi] : nullptr;
      if (p == nullptr || !IsJoinable(*p)) continue;
      if ((table.SameGroup(p, c) && p->scheme.num_bits == c->scheme.num_bits) ||
          SameParams(table, p, c)) {
        continue;
      }
      if (std::binary_search(edges.begin(), edges.end(), Edge{t, producer, op})) continue;
      add("edge", StrCat(DescribeTqc(*c), " reads tensor '", t->name(), "' with params ",
                         p->scheme.num_bits != c->scheme.num_bits
                             ? StrCat("of ", c->scheme.num_bits, " bits, not the ",
                                      p->scheme.num_bits, " of ")
                             : std::string("other than "),
                         DescribeTqc(*p), " and no requantize is recorded"));
    }
    // Bias.
    if (config->inputs.size() >= 3 && config->inputs[2] != nullptr &&
        config->inputs[2]->role == TensorRole::kBias) {
      const TQC* b = config->inputs[2];
      const TQC* in = config->inputs[0];
      const TQC* w = config->inputs[1];
      const auto& bs = table.scale(b);
      if (!bs.empty() && in != nullptr && w != nullptr) {
        const auto& is = table.scale(in);
        const auto& ws = table.scale(w);
        bool ok = is.size() == 1 && !ws.empty();
        const std::vector<float> expected = ok ? BiasScales(is[0], ws, bs.size()) : std::vector<float>();
        for (size_t c = 0; ok && c < bs.size(); ++c) ok = NearlyEqual(bs[c], expected[c]);
        for (int64_t z : table.zero_point(b)) ok = ok && z == 0;
        if (!ok) {
          add("bias", StrCat(DescribeTqc(*b), " params are not input_scale * weight_scale with ",
                             "zero_point 0"));
        }
      }
    }
  }

  // Membership and schemes, over every group with more than one member, in the order of
  // QuantConfigTable::Groups() (by root id, members by id), bucketed into one array.
  const size_t n = table.size();
  std::vector<int32_t> root_of(n);
  std::vector<uint32_t> first(n + 1, 0);
  for (size_t i = 0; i < n; ++i) {
    root_of[i] = table.Root(table.Get(static_cast<int32_t>(i)))->id;
    ++first[static_cast<size_t>(root_of[i]) + 1];
  }
  for (size_t r = 0; r < n; ++r) first[r + 1] += first[r];
  std::vector<TQC*> by_group(n);
  {
    std::vector<uint32_t> fill(first.begin(), first.end() - 1);
    for (size_t i = 0; i < n; ++i) {
      by_group[fill[static_cast<size_t>(root_of[i])]++] = table.Get(static_cast<int32_t>(i));
    }
  }
  for (size_t r = 0; r < n; ++r) {
    const std::span<TQC* const> group(by_group.data() + first[r], first[r + 1] - first[r]);
    if (group.size() < 2) continue;
    for (const TQC* m : group) {
      if (!IsJoinable(*m)) {
        add("membership", StrCat(DescribeTqc(*m), " (", QuantStateName(m->state), ", ",
                                 m->scheme.ToString(), ") must not share a group"));
      }
      if (m->scheme.num_bits != group.front()->scheme.num_bits) {
        add("width", StrCat(DescribeTqc(*m), " is ", m->scheme.num_bits, "-bit but its group has ",
                            DescribeTqc(*group.front()), " at ", group.front()->scheme.num_bits,
                            " bits: a group shares one bit width"));
      } else if (!(m->scheme == group.front()->scheme)) {
        add("scheme", StrCat(DescribeTqc(*m), " is ", m->scheme.ToString(), " but its group has ",
                             DescribeTqc(*group.front()), " ", group.front()->scheme.ToString()));
      }
    }
  }
  return out;
}

}  // namespace qalign
