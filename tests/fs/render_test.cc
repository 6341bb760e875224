// The text of maps, status and host_page_size (fs/render.h), byte for byte.
#include "fs/render.h"

#include <gtest/gtest.h>

#include <vector>

namespace taskfs::fs {
namespace {

vm::RegionInfo Region(vm::vm_address_t start, vm::vm_size_t size,
                      vm::vm_prot_t prot, vm::vm_prot_t max,
                      vm::vm_inherit_t inheritance) {
  vm::RegionInfo r;
  r.start = start;
  r.size = size;
  r.protection = prot;
  r.max_protection = max;
  r.inheritance = inheritance;
  return r;
}

TEST(RenderTest, HostPageSize) {
  EXPECT_EQ(RenderHostPageSize(4096), "4096\n");
  EXPECT_EQ(RenderHostPageSize(65536), "65536\n");
}

TEST(RenderTest, MapsOfNoRegionsIsEmpty) { EXPECT_EQ(RenderMaps({}), ""); }

TEST(RenderTest, MapsLines) {
  const std::vector<vm::RegionInfo> regions = {
      Region(0x400000, 0x4000, vm::VM_PROT_READ | vm::VM_PROT_EXECUTE,
             vm::VM_PROT_ALL, vm::VM_INHERIT_COPY),
      Region(0x600000, 0x10000, vm::VM_PROT_DEFAULT, vm::VM_PROT_ALL,
             vm::VM_INHERIT_SHARE),
      Region(0x610000, 0x1000, vm::VM_PROT_NONE, vm::VM_PROT_READ,
             vm::VM_INHERIT_NONE),
      Region(0x3fffffffffff0000, 0x10000, vm::VM_PROT_ALL, vm::VM_PROT_ALL, 7),
  };
  EXPECT_EQ(RenderMaps(regions),
            "0000000000400000-0000000000404000 r-x/rwx copy\n"
            "0000000000600000-0000000000610000 rw-/rwx share\n"
            "0000000000610000-0000000000611000 ---/r-- none\n"
            "3fffffffffff0000-4000000000000000 rwx/rwx ?\n");
}

TEST(RenderTest, Status) {
  StatusFacts facts;
  facts.name = "demo";
  facts.id = 3;
  facts.uid = 1000;
  facts.gid = 100;
  facts.page_size = 16384;
  facts.address_bits = 47;
  vm::TaskStatistics stats;
  stats.regions = 4;
  stats.virtual_bytes = 262144;
  stats.resident_bytes = 81920;
  stats.shared_bytes = 16384;
  stats.metadata_bytes = 9000;
  EXPECT_EQ(RenderStatus(facts, stats),
            "name: demo\n"
            "id: 3\n"
            "owner: 1000:100\n"
            "page_size: 16384\n"
            "address_bits: 47\n"
            "regions: 4\n"
            "virtual_bytes: 262144\n"
            "resident_bytes: 81920\n"
            "shared_bytes: 16384\n"
            "metadata_bytes: 9000\n"
            "flavor: classic\n");
}

TEST(RenderTest, StatusOfLargestValues) {
  StatusFacts facts;
  facts.name = "x";
  facts.id = UINT64_MAX;
  facts.uid = 4294967294u;
  facts.gid = 0;
  facts.page_size = 4096;
  facts.address_bits = 62;
  facts.flavor = "xnu";
  vm::TaskStatistics stats;
  stats.virtual_bytes = UINT64_MAX;
  EXPECT_EQ(RenderStatus(facts, stats),
            "name: x\n"
            "id: 18446744073709551615\n"
            "owner: 4294967294:0\n"
            "page_size: 4096\n"
            "address_bits: 62\n"
            "regions: 0\n"
            "virtual_bytes: 18446744073709551615\n"
            "resident_bytes: 0\n"
            "shared_bytes: 0\n"
            "metadata_bytes: 0\n"
            "flavor: xnu\n");
}

}  // namespace
}  // namespace taskfs::fs
