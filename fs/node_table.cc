#include "fs/node_table.h"

#include <utility>

#include "vmcore/vm_system.h"

namespace taskfs::fs {

void NodeTable::Add(const std::shared_ptr<vm::Task>& task, uid_t uid,
                    gid_t gid) {
  Entry entry;
  entry.node.task = task;
  entry.node.errors = std::make_shared<ErrorLog>(task->system().budget());
  entry.node.uid = uid;
  entry.node.gid = gid;
  entry.node.modes = kDefaultModes;
  entry.node.created = task->created();
  std::lock_guard lock(mu_);
  auto [it, added] = nodes_.try_emplace(task->id());
  if (added || it->second.removed) ++visible_;
  entry.open_files = it->second.open_files;
  it->second = std::move(entry);
}

const NodeTable::Entry* NodeTable::Visible(std::uint64_t id) const {
  auto it = nodes_.find(id);
  return it == nodes_.end() || it->second.removed ? nullptr : &it->second;
}

bool NodeTable::Find(std::uint64_t id, TaskNode* out) const {
  std::lock_guard lock(mu_);
  const Entry* entry = Visible(id);
  if (entry == nullptr) return false;
  *out = entry->node;
  return true;
}

bool NodeTable::FindLast(std::uint64_t id, TaskNode* out) const {
  std::lock_guard lock(mu_);
  auto it = nodes_.find(id);
  if (it == nodes_.end()) return false;
  *out = it->second.node;
  return true;
}

std::vector<TaskNode> NodeTable::NodesAfter(std::uint64_t after_id,
                                            std::size_t max) const {
  std::vector<TaskNode> out;
  std::lock_guard lock(mu_);
  for (auto it = nodes_.upper_bound(after_id);
       it != nodes_.end() && out.size() < max; ++it) {
    if (!it->second.removed) out.push_back(it->second.node);
  }
  return out;
}

std::size_t NodeTable::Count() const {
  std::lock_guard lock(mu_);
  return visible_;
}

void NodeTable::Remove(std::uint64_t id) {
  std::lock_guard lock(mu_);
  auto it = nodes_.find(id);
  if (it == nodes_.end() || it->second.removed) return;
  --visible_;
  if (it->second.open_files == 0) {
    nodes_.erase(it);
  } else {
    it->second.removed = true;
  }
}

bool NodeTable::Pin(std::uint64_t id, TaskNode* out) {
  std::lock_guard lock(mu_);
  auto it = nodes_.find(id);
  if (it == nodes_.end() || it->second.removed) return false;
  ++it->second.open_files;
  *out = it->second.node;
  return true;
}

void NodeTable::Unpin(std::uint64_t id) {
  std::lock_guard lock(mu_);
  auto it = nodes_.find(id);
  if (it == nodes_.end() || it->second.open_files == 0) return;
  if (--it->second.open_files == 0 && it->second.removed) nodes_.erase(it);
}

}  // namespace taskfs::fs
