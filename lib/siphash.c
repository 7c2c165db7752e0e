/* siphash.c - SipHash-2-4: keyed hashing for hash tables fed by clients, and privacy keys */
/* SPDX-License-Identifier: BSD-2-Clause */
#include "siphash.h"
#include "le64.h"

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

/* sipround - one SipHash round */
static void sipround(uint64_t v[4])
{
	v[0] += v[1]; v[1] = ROTL(v[1], 13); v[1] ^= v[0]; v[0] = ROTL(v[0], 32);
	v[2] += v[3]; v[3] = ROTL(v[3], 16); v[3] ^= v[2];
	v[0] += v[3]; v[3] = ROTL(v[3], 21); v[3] ^= v[0];
	v[2] += v[1]; v[1] = ROTL(v[1], 17); v[1] ^= v[2]; v[2] = ROTL(v[2], 32);
}

/* pd_siphash - SipHash-2-4 of DATA under KEY, 8 bytes little-endian */
void pd_siphash(const uint8_t key[16], const void *data, size_t len, uint8_t out[8])
{
	const uint8_t *in = data;
	uint64_t k0 = pd_rd64le(key), k1 = pd_rd64le(key + 8);
	uint64_t v[4] = {0x736f6d6570736575ULL ^ k0, 0x646f72616e646f6dULL ^ k1,
			 0x6c7967656e657261ULL ^ k0, 0x7465646279746573ULL ^ k1};
	uint64_t b = (uint64_t)len << 56, m;
	size_t i, end = len - len % 8;

	for (i = 0; i < end; i += 8) {
		m = pd_rd64le(in + i);
		v[3] ^= m;
		sipround(v);
		sipround(v);
		v[0] ^= m;
	}
	for (size_t j = 0; j < len % 8; j++)
		b |= (uint64_t)in[end + j] << (8 * j);
	v[3] ^= b;
	sipround(v);
	sipround(v);
	v[0] ^= b;
	v[2] ^= 0xff;
	for (int r = 0; r < 4; r++)
		sipround(v);
	pd_wr64le(out, v[0] ^ v[1] ^ v[2] ^ v[3]);
}

/* pd_siphash64 - the same as a number, for hash tables */
uint64_t pd_siphash64(const uint8_t key[16], const void *data, size_t len)
{
	uint8_t out[8];

	pd_siphash(key, data, len, out);
	return pd_rd64le(out);
}
