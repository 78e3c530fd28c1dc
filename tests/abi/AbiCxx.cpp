// The ABI header compiles as C++20 with -pedantic, and its layout starts with the version.
#include <rackterm/processor.h>

#include <cstddef>

static_assert(offsetof(rackterm_processor_v2, abi_version) == 0, "abi_version comes first");
static_assert(offsetof(rackterm_processor_v2, struct_size) == 4, "struct_size comes second");
