/* The ABI header is plain C11. */
#include <rackterm/processor.h>

size_t rackterm_abi_c11_size(void);
size_t rackterm_abi_c11_size(void) { return sizeof(rackterm_processor_v2); }
