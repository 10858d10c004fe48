/*
 * An LD_PRELOAD shim for interop tests: a peer that insists on steering the clock (ntpd-rs
 * exits when it cannot) runs with it, and every clock write it makes is answered as if
 * done while nothing is written. Reads pass through. The peer also runs without
 * CAP_SYS_TIME, so a call this shim misses is refused by the kernel: this machine's
 * clock is never touched either way.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <sys/time.h>
#include <sys/timex.h>
#include <time.h>

typedef int (*adjtimex_fn)(struct timex *);
typedef int (*clock_adjtime_fn)(clockid_t, struct timex *);

/* The kernel's state for `clock`, read (modes 0), into `tx`. */
static int read_state(clockid_t clock, struct timex *tx) {
    static clock_adjtime_fn real;
    if (!real) real = (clock_adjtime_fn)dlsym(RTLD_NEXT, "clock_adjtime");
    struct timex r = {0};
    int state = real(clock, &r);
    if (state >= 0) *tx = r;
    return state;
}

/* A read is a read; a write is answered with the state as it is, as if made. */
int clock_adjtime(clockid_t clock, struct timex *tx) { return read_state(clock, tx); }

int adjtimex(struct timex *tx) { return clock_adjtime(CLOCK_REALTIME, tx); }
int ntp_adjtime(struct timex *tx) { return clock_adjtime(CLOCK_REALTIME, tx); }
int clock_settime(clockid_t clock, const struct timespec *ts) { (void)clock; (void)ts; return 0; }
int settimeofday(const struct timeval *tv, const struct timezone *tz) { (void)tv; (void)tz; return 0; }
