// SPDX-License-Identifier: MIT
/*
 * Ring creation: every bad size, flag and option is -EINVAL; good ones give a control page laid
 * out as perf's, with the data area where data_offset says.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "evring.h"
#include "test.h"

int main(void)
{
	static const uint64_t bad_sizes[] = { 0, 1, 63, 96, 4095, 4097, 1ull << 31, ~0ull };
	struct evr_ring *r = NULL;

	t_init("ring-create");
	for (size_t i = 0; i < sizeof(bad_sizes) / sizeof(bad_sizes[0]); i++) {
		EVR_OPTS(evr_ring_opts, o, .data_size = bad_sizes[i]);
		expect_eq(evr_ring_create(&o, &r), -EINVAL);
	}
	{
		EVR_OPTS(evr_ring_opts, o, .data_size = 2048, .flags = EVR_RING_MIRROR);
		expect_eq(evr_ring_create(&o, &r), -EINVAL); /* mirror needs a whole page */
	}
	{
		EVR_OPTS(evr_ring_opts, o, .data_size = 4096, .flags = 0x80);
		expect_eq(evr_ring_create(&o, &r), -EINVAL);
	}
	{
		EVR_OPTS(evr_ring_opts, o, .data_size = 4096);
		expect_eq(evr_ring_create(NULL, &r), -EINVAL);
		expect_eq(evr_ring_create(&o, NULL), -EINVAL);
		o.sz = 8;
		expect_eq(evr_ring_create(&o, &r), -EINVAL);
	}
	for (uint32_t flags = 0; flags < 4; flags++) {
		EVR_OPTS(evr_ring_opts, o, .data_size = 1u << 16, .flags = flags, .ring_id = 42);
		struct evr_ctrl *c;

		assert_eq(evr_ring_create(&o, &r), 0);
		c = evr_ring_get_ctrl(r);
		expect_eq(c->data_size, 1u << 16);
		expect_eq(c->data_offset, 4096);
		expect_eq(c->magic, EVR_CTRL_MAGIC);
		expect_eq(c->ring_id, 42);
		expect_eq(!!(c->flags & EVR_CTRL_MIRROR), !!(flags & EVR_RING_MIRROR));
		expect_eq(!!(c->flags & EVR_CTRL_BACKWARD), !!(flags & EVR_RING_OVERWRITE));
		expect_eq(evr_ring_get_fd(r) >= 0, !!(flags & EVR_RING_MIRROR));
		if (flags & EVR_RING_MIRROR) {
			/*
			 * the two views alias: a byte written through one shows in the other
			 * (volatile: the compiler believes the two addresses are distinct)
			 */
			volatile uint8_t *d = (uint8_t *)c + c->data_offset;

			d[5] = 0xab;
			expect_eq(d[(1u << 16) + 5], 0xab);
		}
		evr_ring_destroy(r);
	}
	evr_ring_destroy(NULL);
	return t_done();
}
