// QuantConfigTable: owns every TQC of a model and the groups they form.
//
// Two calls change a table once its TQCs exist: Link merges two groups (root to root, with the
// members' state changes), and SetGroupParams gives a group its params (with the root's and the
// members' state changes). Everything else reads.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "ir/graph.h"
#include "qalign/status.h"
#include "quant/scheme.h"
#include "quant/tqc.h"
#include "quant/union_find.h"

namespace qalign {

class QuantConfigTable {
 public:
  // A new TQC with the next id, registered in its op's config when it has an op and a port.
  TQC* Create(const Port& port, TensorRole role, const QuantScheme& scheme,
              QuantState state = QuantState::kInitial);
  TQC* Get(int32_t id) { return &tqc_blocks_[Block(id)][Slot(id)]; }
  const TQC* Get(int32_t id) const { return &tqc_blocks_[Block(id)][Slot(id)]; }
  size_t size() const { return num_tqcs_; }
  std::vector<TQC*> all();  // in id order

  // Per-operation configs, in the order they were made.
  OperationQuantConfig& ForOp(Operation* op);
  const OperationQuantConfig* FindOp(const Operation* op) const;
  // FindOp of each op in `ops`, in that order. Configs made in the order of `ops` (as dispatch
  // makes them, in graph order) are found by walking both lists side by side, without a lookup
  // per op; any other order falls back to FindOp.
  std::vector<const OperationQuantConfig*> FindOps(const std::vector<Operation*>& ops) const;
  std::vector<OperationQuantConfig*> op_configs();
  // The op types of the configs, by OperationQuantConfig::type_id (0, 1, ... as first met).
  const std::string& op_type(int32_t type_id) const {
    return op_types_[static_cast<size_t>(type_id)];
  }
  size_t num_op_types() const { return op_types_.size(); }

  // Group root of a TQC.
  TQC* Root(const TQC* tqc);
  // Merges the groups of a and b, ROOT to ROOT (union by rank: on equal ranks a's root stays);
  // returns false if already together. Fails (InvalidArgument naming both ports) if either is
  // FP32/SOI, floating, per-channel, or the schemes differ; then nothing changes. On success the
  // old root that lost its place becomes passive (PASSIVE, or PASSIVE_INIT while the new root has
  // no params; a BAKED member becomes PASSIVE_BAKED, an OVERLAPPED one stays OVERLAPPED).
  StatusOr<bool> Link(TQC* a, TQC* b);
  bool SameGroup(const TQC* a, const TQC* b);
  // Every group with its members, ordered by root id; singletons included.
  std::vector<std::vector<TQC*>> Groups();
  // The members of tqc's group (tqc included), in id order. O(group size).
  std::vector<TQC*> Members(const TQC* tqc);
  size_t GroupSize(const TQC* tqc) const;  // Members(tqc).size(), without building the list

  // Group params, read through the root.
  const std::vector<float>& scale(const TQC* tqc) { return Root(tqc)->scale; }
  const std::vector<int64_t>& zero_point(const TQC* tqc) { return Root(tqc)->zero_point; }
  // Sets the params of member's group on its root; returns whether anything changed. The root
  // becomes ACTIVATED (a BAKED or OVERLAPPED root keeps its state) and PASSIVE_INIT members
  // become PASSIVE. Setting the params a group already has on an ACTIVATED, BAKED, PASSIVE_BAKED
  // or OVERLAPPED root changes nothing, so running a pass twice reports no change.
  bool SetGroupParams(const TQC* member, std::span<const float> scale,
                      std::span<const int64_t> zero_points);

  const UnionFind& union_find() const { return union_find_; }

 private:
  static size_t Block(int32_t id) { return static_cast<size_t>(id) / kTqcsPerBlock; }
  static size_t Slot(int32_t id) { return static_cast<size_t>(id) % kTqcsPerBlock; }
  // The state of a non-root member once its group root is `root`.
  static QuantState PassiveState(QuantState state, const TQC& root);

  // TQCs by id, in blocks that never move, so TQC pointers stay valid. A block holds a thousand,
  // so TQCs made one after another (an op's ports, neighbouring ops) lie together in memory and
  // a walk in id or graph order reads them in sequence (a std::deque's blocks hold four).
  static constexpr size_t kTqcsPerBlock = 1024;
  std::vector<std::unique_ptr<TQC[]>> tqc_blocks_;
  size_t num_tqcs_ = 0;
  UnionFind union_find_;
  // Circular list of each group's members: next_member_[id] is the next one. Link splices two
  // rings in O(1), so Members() and the state updates walk one group, never the whole table.
  std::vector<int32_t> next_member_;
  std::deque<OperationQuantConfig> op_configs_;
  std::unordered_map<const Operation*, size_t> op_index_;  // op -> index in op_configs_
  std::vector<std::string> op_types_;                      // by type id
  std::unordered_map<std::string, int32_t> op_type_ids_;
};

}  // namespace qalign
