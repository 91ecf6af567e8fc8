/*
 * coro.c - stackful coroutines on mmap()ed stacks with a guard page, pooled per process.
 *
 * Each coroutine lives in one mapping: a PROT_NONE guard page at the bottom, the stack above it and
 * the sff_coro_t itself at the very top, so a pooled stack needs no allocation to be reused and an
 * overflow runs into the guard page (SIGSEGV) before it can reach anything else of ours.
 *
 * On x86_64 and aarch64 the switch is coro_switch.S (no syscall per switch); elsewhere it falls back
 * to swapcontext(). With AddressSanitizer every switch is announced to ASan with the fiber API so it
 * knows which stack is current and keeps one fake stack per coroutine: the side being left calls
 * __sanitizer_start_switch_fiber() with the stack it goes to (and NULL as the fake stack save when it
 * is left for good), the side being entered calls __sanitizer_finish_switch_fiber(), which also
 * tells it the bounds of the stack it came from.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
#include "coro.h"

#if defined(__x86_64__) || defined(__aarch64__)
#define CORO_ASM_SWITCH 1
#else
#include <ucontext.h>
#endif

#if defined(__SANITIZE_ADDRESS__)
#define CORO_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CORO_ASAN 1
#endif
#endif
#ifdef CORO_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#ifndef MAP_NORESERVE
#define MAP_NORESERVE 0
#endif
#ifndef MAP_STACK
#define MAP_STACK 0
#endif

#define DEFAULT_STACK_SIZE (256 * 1024)
#define DEFAULT_MAX_CACHED 1024

enum { CORO_SUSPENDED, CORO_RUNNING, CORO_DONE };

struct st_sff_coro_t {
    sff_coro_fn fn;
    void *arg;
    /* The coroutine that resumed this one while it runs (NULL: the loop's own stack). */
    sff_coro_t *resumer;
    int state;
    int started;
    /* The mapping this struct lives at the top of; its size fixes the stack size of this coroutine. */
    char *map;
    size_t map_size;
    /* Next free stack while cached. */
    sff_coro_t *next_free;
#ifdef CORO_ASM_SWITCH
    /* This coroutine's stack pointer while it is suspended, and its resumer's while it runs. */
    void *sp;
    void *resumer_sp;
#else
    ucontext_t ctx;
    ucontext_t resumer_ctx;
#endif
#ifdef CORO_ASAN
    /* The resumer's stack as ASan knows it, for the switch back in sff_coro_yield(). */
    const void *resumer_stack;
    size_t resumer_stack_size;
#endif
};

#ifdef CORO_ASM_SWITCH
__attribute__((visibility("hidden"))) void sff_coro__switch(void **save_sp, void *new_sp);
__attribute__((visibility("hidden"))) void *sff_coro__prepare(void *stack_top, void (*entry)(void *), void *arg);
#endif

static size_t stack_size = DEFAULT_STACK_SIZE;
static size_t max_cached = DEFAULT_MAX_CACHED;
static size_t page_size;
static sff_coro_t *current;
static sff_coro_t *free_list;
static size_t num_in_use, num_cached;

static size_t get_page_size(void)
{
    if (page_size == 0) {
        long n = sysconf(_SC_PAGESIZE);
        page_size = n > 0 ? (size_t)n : 4096;
    }
    return page_size;
}

/* The struct sits at the top of the mapping, 64-byte aligned so the stack below it starts aligned. */
static sff_coro_t *coro_of_map(char *map, size_t map_size)
{
    uintptr_t top = (uintptr_t)map + map_size;
    return (sff_coro_t *)((top - sizeof(sff_coro_t)) & ~(uintptr_t)63);
}

#if defined(CORO_ASAN) || !defined(CORO_ASM_SWITCH)

/* The usable stack: from just above the guard page up to the struct. */
static char *stack_bottom(const sff_coro_t *co)
{
    return co->map + get_page_size();
}

static size_t stack_bytes(const sff_coro_t *co)
{
    return (size_t)((const char *)co - stack_bottom(co));
}

#endif

static sff_coro_t *map_stack(void)
{
    size_t map_size = get_page_size() + stack_size;
    char *map = mmap(NULL, map_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (map == MAP_FAILED)
        return NULL;
    if (mprotect(map, get_page_size(), PROT_NONE) != 0) {
        munmap(map, map_size);
        return NULL;
    }
    sff_coro_t *co = coro_of_map(map, map_size);
    co->map = map;
    co->map_size = map_size;
    return co;
}

static void unmap_stack(sff_coro_t *co)
{
    munmap(co->map, co->map_size);
}

static void trim_cache(size_t keep)
{
    while (num_cached > keep) {
        sff_coro_t *co = free_list;
        free_list = co->next_free;
        --num_cached;
        unmap_stack(co);
    }
}

void sff_coro_configure(size_t new_stack_size, size_t new_max_cached)
{
    size_t page = get_page_size();
    if (new_stack_size == 0)
        new_stack_size = DEFAULT_STACK_SIZE;
    new_stack_size = (new_stack_size + page - 1) / page * page;
    /* Cached stacks of another size would hand out the wrong size; stacks in use keep theirs. */
    if (new_stack_size != stack_size)
        trim_cache(0);
    stack_size = new_stack_size;
    max_cached = new_max_cached;
    trim_cache(max_cached);
}

static void finish(sff_coro_t *co)
{
    co->state = CORO_DONE;
    current = co->resumer;
    co->resumer = NULL;
#ifdef CORO_ASAN
    /* NULL: this stack is never switched back to, so ASan drops its fake stack now. */
    __sanitizer_start_switch_fiber(NULL, co->resumer_stack, co->resumer_stack_size);
#endif
#ifdef CORO_ASM_SWITCH
    sff_coro__switch(&co->sp, co->resumer_sp);
#else
    setcontext(&co->resumer_ctx);
#endif
    abort();
}

#ifdef CORO_ASM_SWITCH

static void entry(void *arg)
{
    sff_coro_t *co = arg;
#ifdef CORO_ASAN
    __sanitizer_finish_switch_fiber(NULL, &co->resumer_stack, &co->resumer_stack_size);
#endif
    co->fn(co->arg);
    finish(co);
}

#else

/* makecontext() passes only ints, so the coroutine is found through current instead. */
static void entry(void)
{
    sff_coro_t *co = current;
#ifdef CORO_ASAN
    __sanitizer_finish_switch_fiber(NULL, &co->resumer_stack, &co->resumer_stack_size);
#endif
    co->fn(co->arg);
    finish(co);
}

#endif

sff_coro_t *sff_coro_create(sff_coro_fn fn, void *arg)
{
    sff_coro_t *co;
    if (free_list != NULL) {
        co = free_list;
        free_list = co->next_free;
        --num_cached;
    } else if ((co = map_stack()) == NULL) {
        return NULL;
    }
    co->fn = fn;
    co->arg = arg;
    co->resumer = NULL;
    co->state = CORO_SUSPENDED;
    co->started = 0;
    co->next_free = NULL;
#ifdef CORO_ASM_SWITCH
    co->sp = sff_coro__prepare(co, entry, co);
    co->resumer_sp = NULL;
#else
    if (getcontext(&co->ctx) != 0) {
        co->next_free = free_list;
        free_list = co;
        ++num_cached;
        return NULL;
    }
    co->ctx.uc_stack.ss_sp = stack_bottom(co);
    co->ctx.uc_stack.ss_size = stack_bytes(co);
    co->ctx.uc_link = NULL;
    makecontext(&co->ctx, entry, 0);
#endif
    ++num_in_use;
    return co;
}

int sff_coro_resume(sff_coro_t *co)
{
    assert(co != current);
    assert(co->state == CORO_SUSPENDED);
    co->resumer = current;
    co->state = CORO_RUNNING;
    co->started = 1;
    current = co;
#ifdef CORO_ASAN
    void *fake_stack = NULL;
    __sanitizer_start_switch_fiber(&fake_stack, stack_bottom(co), stack_bytes(co));
#endif
#ifdef CORO_ASM_SWITCH
    sff_coro__switch(&co->resumer_sp, co->sp);
#else
    swapcontext(&co->resumer_ctx, &co->ctx);
#endif
#ifdef CORO_ASAN
    __sanitizer_finish_switch_fiber(fake_stack, NULL, NULL);
#endif
    return co->state == CORO_DONE;
}

void sff_coro_yield(void)
{
    sff_coro_t *co = current;
    assert(co != NULL);
    co->state = CORO_SUSPENDED;
    current = co->resumer;
    co->resumer = NULL;
#ifdef CORO_ASAN
    void *fake_stack = NULL;
    __sanitizer_start_switch_fiber(&fake_stack, co->resumer_stack, co->resumer_stack_size);
#endif
#ifdef CORO_ASM_SWITCH
    sff_coro__switch(&co->sp, co->resumer_sp);
#else
    swapcontext(&co->ctx, &co->resumer_ctx);
#endif
#ifdef CORO_ASAN
    /* The next resumer may be another coroutine than the last one, so its stack is taken anew. */
    __sanitizer_finish_switch_fiber(fake_stack, &co->resumer_stack, &co->resumer_stack_size);
#endif
}

sff_coro_t *sff_coro_current(void)
{
    return current;
}

int sff_coro_done(const sff_coro_t *co)
{
    return co->state == CORO_DONE;
}

void sff_coro_destroy(sff_coro_t *co)
{
    if (co == NULL)
        return;
    assert(co->state != CORO_RUNNING);
    assert(co->state == CORO_DONE || !co->started);
#ifdef CORO_ASAN
    /* Frames that never returned (the entry's, at least) may leave redzones poisoned, and the next
     * user of this memory, pooled or mapped again at the same address, must not trip over them.
     * Only the poisoned part is cleared, so that the shadow of untouched stack stays unallocated. */
    if (co->started) {
        char *poisoned = __asan_region_is_poisoned(stack_bottom(co), stack_bytes(co));
        if (poisoned != NULL)
            ASAN_UNPOISON_MEMORY_REGION(poisoned, (size_t)((char *)co - poisoned));
    }
#endif
    --num_in_use;
    if (num_cached < max_cached && co->map_size == get_page_size() + stack_size) {
        co->next_free = free_list;
        free_list = co;
        ++num_cached;
    } else {
        unmap_stack(co);
    }
}

size_t sff_coro_stacks_in_use(void)
{
    return num_in_use;
}

size_t sff_coro_stacks_cached(void)
{
    return num_cached;
}
