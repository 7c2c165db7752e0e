/* le64.h - 64-bit little-endian reads and writes (records on disk, hash words) */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_LE64_H
#define PD_LE64_H

#include <stdint.h>

/* pd_rd64le - read a little-endian 64-bit word */
static inline uint64_t pd_rd64le(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* pd_wr64le - write a little-endian 64-bit word */
static inline void pd_wr64le(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++, v >>= 8)
		p[i] = (uint8_t)v;
}

#endif
