/* test_timer.c - unit tests of the loop's timer heap and of the request budget */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "pipeline.h"
#include "tap.h"
#include "timer.h"

#include <stdlib.h>

static int fired[1000];

/* mark - a timer's FIRE: note which one */
static void mark(pd_timer *t, uint64_t now)
{
	(void)now;
	fired[t->at % 1000]++;
}

int main(void)
{
	static pd_timer t[1000];
	pd_timers h;

	pd_timers_init(&h);
	/* 1,000 timers armed in a scrambled order, some moved, some cancelled */
	for (unsigned i = 0; i < 1000; i++) {
		unsigned k = (i * 7919u) % 1000u;

		t[k].fire = mark;
		pd_timer_arm(&h, &t[k], 1000000 + k); /* at % 1000 == k */
	}
	CHECK(pd_timers_next(&h) == 1000000);
	pd_timer_cancel(&h, &t[0]);
	pd_timer_cancel(&h, &t[0]); /* twice: a no-op */
	pd_timer_arm(&h, &t[5], 1000000 + 5 + 2000); /* moved later: still k 5 */
	CHECK(pd_timers_next(&h) == 1000001);
	/* nothing due: nothing looked at (the cost is per expiring timer, issue 12.6) */
	h.visited = 0;
	CHECK(pd_timers_run(&h, 999999) == 0 && h.visited == 0);
	/* 10 due: exactly those 10 run, earliest first */
	CHECK(pd_timers_run(&h, 1000010) == 9); /* 1..10 without 5 */
	CHECK(h.visited == 9);
	CHECK(fired[0] == 0 && fired[5] == 0 && fired[1] == 1 && fired[10] == 1 && fired[11] == 0);
	CHECK(!pd_timer_armed(&t[1]) && pd_timer_armed(&t[11]));
	CHECK(pd_timers_run(&h, 1003000) == 990); /* the rest, 5 included */
	CHECK(fired[5] == 1 && fired[999] == 1);
	CHECK(pd_timers_next(&h) == UINT64_MAX);
	pd_timers_free(&h);

	/* the budget: a plugin's running_since stamped on a worker after NOW was
	 * read (issue 12.4: the unsigned difference was huge: a spurious timeout) */
	CHECK(!pd_over_budget(1000000, 900000, 20, 1, 1000005, 2));
	CHECK(!pd_over_budget(1000000, 1000003, 20, 0, 0, 0)); /* t0 after now, likewise */
	CHECK(pd_over_budget(1000000 + 21000000, 1000000, 20, 0, 0, 0));   /* request_timeout */
	CHECK(pd_over_budget(1000000 + 3000001, 1000000, 20, 1, 1000000, 3)); /* the plugin's own */
	CHECK(!pd_over_budget(1000000 + 3000001, 1000000, 20, 0, 1000000, 3)); /* none running now */
	return tap_done();
}
