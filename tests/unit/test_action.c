/* test_action.c - configured replies: the words a plugin allows, 4NN/5NN codes, length and control characters */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "action.h"
#include "tap.h"

#include <string.h>

int main(void)
{
	static const char *const words[] = {"REJECT", "DEFER_IF_PERMIT", NULL};
	const char *exp = "expected REJECT, DEFER_IF_PERMIT or a 4NN/5NN code";
	char longer[PD_ACTION_MAX + 2];

	CHECK(pd_action_error("REJECT", words, exp) == NULL);
	CHECK(pd_action_error("reject 5.7.1 no", words, exp) == NULL);                 /* any case, with text */
	CHECK(pd_action_error("DEFER_IF_PERMIT 4.7.1 later", words, exp) == NULL);
	CHECK(pd_action_error("450 4.7.1 later", words, exp) == NULL);
	CHECK(pd_action_error("554", words, exp) == NULL);
	CHECK_STR(pd_action_error("250 ok", words, exp), "a code must be 4NN or 5NN");
	CHECK_STR(pd_action_error("DEFER 4.7.1", words, exp), exp);                     /* not among the words */
	CHECK_STR(pd_action_error("REJECTED", words, exp), exp);                        /* a word, not a prefix */
	CHECK_STR(pd_action_error("DEFER_IF", words, exp), exp);
	CHECK(pd_action_error("", words, exp) != NULL);
	CHECK_STR(pd_action_error("REJECT a\tb", words, exp), "must be one line without control characters");
	memset(longer, 'x', sizeof(longer) - 1);
	memcpy(longer, "REJECT ", 7);
	longer[sizeof(longer) - 1] = '\0';
	CHECK_STR(pd_action_error(longer, words, exp), "must be an action of at most 512 bytes");
	longer[PD_ACTION_MAX] = '\0'; /* exactly PD_ACTION_MAX bytes */
	CHECK(pd_action_error(longer, words, exp) == NULL);
	return tap_done();
}
