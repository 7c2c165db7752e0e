/* test_template.c - reply texts with %x fields: every field, unknown ones, %%, a NULL value, truncation */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "template.h"
#include "tap.h"

int main(void)
{
	char out[64];
	const char *v[] = {"192.0.2.1", "zen.test", NULL};

	pd_template(out, sizeof(out), "client [%a] blocked using %z", "azs", v);
	CHECK_STR(out, "client [192.0.2.1] blocked using zen.test");
	pd_template(out, sizeof(out), "100%% sure, %q, %s.", "azs", v);
	CHECK_STR(out, "100% sure, q, .");
	pd_template(out, sizeof(out), "trailing %", "azs", v);
	CHECK_STR(out, "trailing %");
	pd_template(out, 12, "%a and more", "azs", v);
	CHECK_STR(out, "192.0.2.1 a");
	pd_template(out, 1, "%a", "azs", v);
	CHECK_STR(out, "");
	return tap_done();
}
