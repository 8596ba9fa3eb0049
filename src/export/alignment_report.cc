// Alignment report as JSON and as a readable table.
#include "export/alignment_report.h"

#include <nlohmann/json.hpp>

#include <cstdio>

namespace qalign {
namespace {

using json = nlohmann::json;

std::string OpName(const Operation* op) { return op == nullptr ? std::string() : op->name(); }

std::string Fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), format, v);
  return buf;
}

}  // namespace

bool ResolutionLoss(QuantConfigTable& table, const TQC& member, double* loss) {
  if (!member.stats.has_range) return false;
  const auto& shared = table.scale(&member);
  if (shared.size() != 1) return false;
  float own_scale = 0.0f;
  int64_t own_zp = 0;
  if (!ComputeParams(member.scheme, member.stats.min, member.stats.max, &own_scale, &own_zp).ok() ||
      !(own_scale > 0.0f)) {
    return false;
  }
  *loss = static_cast<double>(shared[0]) / static_cast<double>(own_scale);
  return true;
}

std::string AlignmentReportJson(const std::string& target, const AlignmentResult& result,
                                QuantConfigTable& table,
                                const std::vector<AlignmentViolation>& violations,
                                const DerivedParamsStats* derived) {
  json root;
  root["target"] = target;
  json groups = json::array();
  int64_t members_total = 0;
  for (const AlignmentGroup& g : result.groups) {
    json group;
    group["id"] = g.id;
    group["method"] = g.method;
    group["reason"] = g.reason;
    const TQC* first = g.members.front();
    group["scale"] = table.scale(first);
    group["zero_point"] = table.zero_point(first);
    json members = json::array();
    for (const TQC* m : g.members) {
      json member;
      member["op"] = m->port.op->name();
      member["port"] = m->port.ToString();
      member["tensor"] = m->port.tensor != nullptr ? m->port.tensor->name() : std::string();
      if (m->stats.has_range) {
        member["own_min"] = m->stats.min;
        member["own_max"] = m->stats.max;
      } else {
        member["own_min"] = nullptr;
        member["own_max"] = nullptr;
      }
      double loss = 0.0;
      if (ResolutionLoss(table, *m, &loss)) {
        member["resolution_loss"] = loss;
      } else {
        member["resolution_loss"] = nullptr;
      }
      members.push_back(std::move(member));
    }
    members_total += static_cast<int64_t>(g.members.size());
    group["members"] = std::move(members);
    groups.push_back(std::move(group));
  }
  root["groups"] = std::move(groups);
  json requantize = json::array();
  for (const RequantizeEdge& e : result.requantizes) {
    requantize.push_back({{"tensor", e.tensor->name()},
                          {"producer", OpName(e.producer)},
                          {"consumer", OpName(e.consumer)},
                          {"reason", e.reason}});
  }
  root["requantize"] = std::move(requantize);
  root["summary"] = {{"groups", result.groups.size()},
                     {"members", members_total},
                     {"requantize", result.requantizes.size()},
                     {"violations", violations.size()}};
  json v = json::array();
  for (const AlignmentViolation& x : violations) {
    v.push_back({{"check", x.check}, {"message", x.message}});
  }
  root["violations"] = std::move(v);
  if (derived != nullptr) {
    root["bias_fit"] = {{"raised_weight_channels", derived->raised_weight_channels},
                        {"notes", derived->notes}};
  }
  return root.dump(2) + "\n";
}

std::string AlignmentReportText(const std::string& target, const AlignmentResult& result,
                                QuantConfigTable& table,
                                const std::vector<AlignmentViolation>& violations) {
  std::string out;
  int64_t members_total = 0;
  for (const AlignmentGroup& g : result.groups) members_total += static_cast<int64_t>(g.members.size());
  out += StrCat("alignment for target ", target, ": ", result.groups.size(), " groups, ",
                members_total, " members, ", result.requantizes.size(), " requantize edges, ",
                violations.size(), " violations\n");
  if (!result.groups.empty()) {
    out += "\n group  method  scale         zero_point  reason\n";
    for (const AlignmentGroup& g : result.groups) {
      const TQC* first = g.members.front();
      const auto& s = table.scale(first);
      const auto& z = table.zero_point(first);
      out += StrCat(Fmt("%6.0f", g.id), "  ", g.method,
                    std::string(g.method.size() < 6 ? 6 - g.method.size() : 0, ' '), "  ",
                    s.empty() ? std::string("-            ") : Fmt("%-12.6g", s[0]), "  ",
                    z.empty() ? std::string("-") : Fmt("%-10.0f", static_cast<double>(z[0])), "  ",
                    g.reason, "\n");
      for (const TQC* m : g.members) {
        std::string range = m->stats.has_range
                                ? StrCat("[", Fmt("%.6g", m->stats.min), ", ",
                                         Fmt("%.6g", m->stats.max), "]")
                                : std::string("[no range]");
        double loss = 0.0;
        std::string loss_text = ResolutionLoss(table, *m, &loss) ? Fmt("x%.3f", loss) : "-";
        out += StrCat("          ", m->port.op->Describe(), " ", m->port.ToString(), " '",
                      m->port.tensor != nullptr ? m->port.tensor->name() : std::string(), "' ",
                      range, " loss ", loss_text, "\n");
      }
    }
  }
  if (!result.requantizes.empty()) {
    out += "\n requantize edges\n";
    for (const RequantizeEdge& e : result.requantizes) {
      out += StrCat("   tensor '", e.tensor->name(), "' ",
                    e.producer ? e.producer->Describe() : std::string("(graph input)"), " -> ",
                    e.consumer ? e.consumer->Describe() : std::string("(inside producer)"), ": ",
                    e.reason, "\n");
    }
  }
  if (!violations.empty()) {
    out += "\n violations\n";
    for (const AlignmentViolation& v : violations) out += StrCat("   [", v.check, "] ", v.message, "\n");
  }
  return out;
}

}  // namespace qalign
