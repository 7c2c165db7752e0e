/* score.h - a request's score: named contributions that plugins add and the score plugin sums */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_SCORE_H
#define PD_SCORE_H

#include <stddef.h>

#define PD_SCORE_MAX 64       /* contributions per request (more are dropped and counted) */
#define PD_SCORE_LABEL_MAX 96 /* longest label kept, with its NUL */

typedef struct pd_score_item {
	double value;
	char label[PD_SCORE_LABEL_MAX];
} pd_score_item;

/* One request's contributions, in the order they were added; the array is
 * allocated on the first one (an idle connection costs nothing). */
typedef struct pd_scores {
	pd_score_item *item;
	size_t n, cap;
	unsigned long dropped;
} pd_scores;

void pd_scores_reset(pd_scores *s); /* none yet; keeps a small array */
void pd_scores_free(pd_scores *s);
/* Add VALUE under LABEL (cut to PD_SCORE_LABEL_MAX - 1 bytes). A label
 * added again replaces its earlier value: a check that runs again (after
 * waiting for DNS) does not count twice. */
void pd_scores_add(pd_scores *s, const char *label, double value);
double pd_scores_sum(const pd_scores *s);
/* The I-th contribution; -1 past the end. */
int pd_scores_at(const pd_scores *s, size_t i, const char **label, double *value);

#endif
