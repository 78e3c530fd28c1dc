// glibc's own allocator entry points, for the test interposers that count
// allocations (AudioThreadTest, the LD_PRELOAD counter) and forward to them.
#pragma once

#include <cstddef>

extern "C" {
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void* __libc_memalign(size_t, size_t);
void __libc_free(void*);
}
