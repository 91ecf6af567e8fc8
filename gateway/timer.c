#include <stdlib.h>
#include <time.h>
#include "sff.h"
#include "timer.h"

static sff_timer_t **heap;
static size_t heap_len, heap_cap;

uint64_t sff_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t sff_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

void sff_timer_init(sff_timer_t *t, sff_timer_cb cb, void *data)
{
    t->at_ms = 0;
    t->index = 0;
    t->cb = cb;
    t->data = data;
}

static void place(size_t i, sff_timer_t *t)
{
    heap[i] = t;
    t->index = i + 1;
}

static void sift_up(size_t i)
{
    sff_timer_t *t = heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (heap[parent]->at_ms <= t->at_ms)
            break;
        place(i, heap[parent]);
        i = parent;
    }
    place(i, t);
}

static void sift_down(size_t i)
{
    sff_timer_t *t = heap[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= heap_len)
            break;
        if (child + 1 < heap_len && heap[child + 1]->at_ms < heap[child]->at_ms)
            child++;
        if (heap[child]->at_ms >= t->at_ms)
            break;
        place(i, heap[child]);
        i = child;
    }
    place(i, t);
}

void sff_timer_stop(sff_timer_t *t)
{
    if (t->index == 0)
        return;
    size_t i = t->index - 1;
    t->index = 0;
    sff_timer_t *last = heap[--heap_len];
    if (i == heap_len)
        return;
    place(i, last);
    if (i > 0 && heap[(i - 1) / 2]->at_ms > last->at_ms)
        sift_up(i);
    else
        sift_down(i);
}

int sff_timer_start(sff_timer_t *t, uint64_t ms)
{
    sff_timer_stop(t);
    if (heap_len == heap_cap) {
        size_t cap = heap_cap != 0 ? heap_cap * 2 : 256;
        sff_timer_t **h = realloc(heap, cap * sizeof(*h));
        if (h == NULL)
            return SFF_ENOMEM;
        heap = h;
        heap_cap = cap;
    }
    t->at_ms = sff_now_ms() + ms;
    heap[heap_len++] = t;
    sift_up(heap_len - 1);
    return 0;
}

size_t sff_timers_run(uint64_t now)
{
    size_t ran = 0;
    while (heap_len > 0 && heap[0]->at_ms <= now) {
        sff_timer_t *t = heap[0];
        sff_timer_stop(t);
        t->cb(t);
        ran++;
    }
    return ran;
}

int32_t sff_timers_next_wait(uint64_t now, int32_t max)
{
    if (heap_len == 0)
        return max;
    if (heap[0]->at_ms <= now)
        return 0;
    uint64_t d = heap[0]->at_ms - now;
    return d < (uint64_t)max ? (int32_t)d : max;
}

size_t sff_timers_count(void)
{
    return heap_len;
}
