#include "vmcore/reserve_scope.h"

namespace taskfs::vm {
namespace {

thread_local int reserve_scopes = 0;

}  // namespace

ReserveScope::ReserveScope() { ++reserve_scopes; }
ReserveScope::~ReserveScope() { --reserve_scopes; }
bool ReserveScope::active() { return reserve_scopes != 0; }

}  // namespace taskfs::vm
