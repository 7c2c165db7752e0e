/* siphash.h - SipHash-2-4: keyed hashing for hash tables fed by clients, and privacy keys */
/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PD_SIPHASH_H
#define PD_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

/* SipHash-2-4 of DATA (LEN bytes) under the 16-byte KEY: 8 bytes, little-endian. */
void pd_siphash(const uint8_t key[16], const void *data, size_t len, uint8_t out[8]);
/* The same as a 64-bit number (hash tables whose keys clients choose). */
uint64_t pd_siphash64(const uint8_t key[16], const void *data, size_t len);

#endif
