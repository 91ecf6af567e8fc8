/*
 * coro.h - stackful coroutines with pooled, guard-paged stacks (one pool per worker process).
 *
 * A request's handler runs in a coroutine: it starts with sff_coro_resume(), gives control back to
 * the event loop with sff_coro_yield() while it waits, and is resumed when its result is there.
 * Not thread-safe: every call happens on the worker's (single) thread.
 */
#ifndef SFF_CORO_H
#define SFF_CORO_H

#include <stddef.h>

typedef struct st_sff_coro_t sff_coro_t;
typedef void (*sff_coro_fn)(void *arg);

/* Sets the stack size (rounded up to pages; a guard page below each stack is extra) and how many
 * free stacks to keep for reuse. Call before the first sff_coro_create(); defaults: 256 KiB, 1024. */
void sff_coro_configure(size_t stack_size, size_t max_cached);

/* A new coroutine that will run fn(arg) on its own stack when first resumed, or NULL when memory
 * runs out. The caller destroys it with sff_coro_destroy() once it has finished. */
sff_coro_t *sff_coro_create(sff_coro_fn fn, void *arg);

/* Runs co until it yields or returns. Returns 1 when fn has returned, 0 when it yielded.
 * Must not be called from inside co itself; may be called from another coroutine. */
int sff_coro_resume(sff_coro_t *co);

/* Suspends the current coroutine and returns to whoever resumed it. Must be called in a coroutine. */
void sff_coro_yield(void);

/* The coroutine running now, or NULL on the loop's own stack. */
sff_coro_t *sff_coro_current(void);

/* Nonzero once fn has returned. */
int sff_coro_done(const sff_coro_t *co);

/* Gives co's stack back to the pool. co must have finished (or never been started). */
void sff_coro_destroy(sff_coro_t *co);

/* Stacks in use and cached, for metrics. */
size_t sff_coro_stacks_in_use(void);
size_t sff_coro_stacks_cached(void);

#endif
