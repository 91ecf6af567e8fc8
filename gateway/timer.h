/*
 * timer.h - one-shot timers of any duration on the worker's loop (a binary min-heap).
 *
 * h2o 2.2.5's timeouts have one fixed duration per queue, which fits connection timeouts but not
 * sleeps and deadlines of any length. The worker runs due timers after every loop iteration and
 * never lets the loop sleep past the next deadline (sff_timers_next_wait()).
 */
#ifndef SFF_TIMER_H
#define SFF_TIMER_H

#include <stddef.h>
#include <stdint.h>

typedef struct st_sff_timer_t sff_timer_t;
typedef void (*sff_timer_cb)(sff_timer_t *timer);

struct st_sff_timer_t {
    uint64_t at_ms;
    size_t index; /* position in the heap + 1; 0 when not armed */
    sff_timer_cb cb;
    void *data;
};

/* Monotonic milliseconds. */
uint64_t sff_now_ms(void);
uint64_t sff_now_us(void);

/* Prepares caller-owned storage; the timer is not armed. */
void sff_timer_init(sff_timer_t *timer, sff_timer_cb cb, void *data);
/* Arms (or re-arms) the timer to fire after ms milliseconds. Returns 0 or SFF_ENOMEM. */
int sff_timer_start(sff_timer_t *timer, uint64_t ms);
/* Disarms the timer; harmless when it is not armed. */
void sff_timer_stop(sff_timer_t *timer);
static inline int sff_timer_armed(const sff_timer_t *timer)
{
    return timer->index != 0;
}

/* Runs every timer due at now; a callback may arm and stop timers. Returns how many ran. */
size_t sff_timers_run(uint64_t now);
/* Milliseconds until the next timer is due (0 if one is due), capped at max. */
int32_t sff_timers_next_wait(uint64_t now, int32_t max);
/* Armed timers, for tests and metrics. */
size_t sff_timers_count(void);

#endif
