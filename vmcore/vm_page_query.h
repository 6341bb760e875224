// The page-state query: what each page of a range holds (vm_page_query in
// vm_user.h; docs/reference.md §5).
#ifndef TASKFS_VMCORE_VM_PAGE_QUERY_H_
#define TASKFS_VMCORE_VM_PAGE_QUERY_H_

#include <cstdint>
#include <span>

#include "vmcore/address_map.h"
#include "vmcore/page_range.h"
#include "vmcore/vm_types.h"

namespace taskfs::vm {

class Page;

// The identity PageState reports for page: a keyed one-to-one mix of its
// address, so that equal identities mean the same page while the number
// tells nothing of where the daemon keeps it.
std::uint64_t PageIdentity(const Page* page);

// Fills out[i] with the state of the i-th page of range (out holds exactly
// range's pages). Requires the task's lock, shared, and no object lock: it
// locks the range's objects, shared, itself. Allocates nothing, so it
// cannot fail.
void QueryPages(const AddressMap& map, const PageRange& range,
                std::span<PageState> out);

}  // namespace taskfs::vm

#endif  // TASKFS_VMCORE_VM_PAGE_QUERY_H_
