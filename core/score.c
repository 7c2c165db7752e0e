/* score.c - a request's score: named contributions that plugins add and the score plugin sums */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"
#include "score.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* pd_scores_reset - no contribution yet; a grown array goes back */
void pd_scores_reset(pd_scores *s)
{
	if (s->cap > 8)
		pd_scores_free(s);
	s->n = 0;
	s->dropped = 0;
}

/* pd_scores_free - release the array */
void pd_scores_free(pd_scores *s)
{
	free(s->item);
	s->item = NULL;
	s->n = s->cap = 0;
	s->dropped = 0;
}

/* pd_scores_add - add or replace LABEL's contribution */
void pd_scores_add(pd_scores *s, const char *label, double value)
{
	char cut[PD_SCORE_LABEL_MAX];

	snprintf(cut, sizeof(cut), "%s", label ? label : "");
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->item[i].label, cut) == 0) {
			s->item[i].value = value;
			return;
		}
	if (s->n == PD_SCORE_MAX) {
		s->dropped++;
		return;
	}
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 4;
		s->item = pd_xrealloc(s->item, s->cap * sizeof(*s->item));
	}
	memcpy(s->item[s->n].label, cut, sizeof(cut));
	s->item[s->n++].value = value;
}

/* pd_scores_sum - the request's score */
double pd_scores_sum(const pd_scores *s)
{
	double sum = 0;

	for (size_t i = 0; i < s->n; i++)
		sum += s->item[i].value;
	return sum;
}

/* pd_scores_at - the I-th contribution */
int pd_scores_at(const pd_scores *s, size_t i, const char **label, double *value)
{
	if (i >= s->n)
		return -1;
	*label = s->item[i].label;
	*value = s->item[i].value;
	return 0;
}
