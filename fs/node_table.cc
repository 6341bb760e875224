#include "fs/node_table.h"

#include <utility>

namespace taskfs::fs {

void NodeTable::Add(const std::shared_ptr<vm::Task>& task, uid_t uid,
                    gid_t gid) {
  TaskNode node;
  node.task = task;
  node.uid = uid;
  node.gid = gid;
  node.modes = kDefaultModes;
  clock_gettime(CLOCK_REALTIME, &node.created);
  std::lock_guard lock(mu_);
  nodes_[task->id()] = std::move(node);
}

bool NodeTable::Find(std::uint64_t id, TaskNode* out) const {
  std::lock_guard lock(mu_);
  auto it = nodes_.find(id);
  if (it == nodes_.end()) return false;
  *out = it->second;
  return true;
}

std::vector<TaskNode> NodeTable::NodesAfter(std::uint64_t after_id,
                                            std::size_t max) const {
  std::vector<TaskNode> out;
  std::lock_guard lock(mu_);
  for (auto it = nodes_.upper_bound(after_id);
       it != nodes_.end() && out.size() < max; ++it) {
    out.push_back(it->second);
  }
  return out;
}

std::size_t NodeTable::Count() const {
  std::lock_guard lock(mu_);
  return nodes_.size();
}

void NodeTable::Remove(std::uint64_t id) {
  std::lock_guard lock(mu_);
  nodes_.erase(id);
}

}  // namespace taskfs::fs
