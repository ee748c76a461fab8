// SPDX-License-Identifier: Apache-2.0
/* reply_scan.c — see reply_scan.h. The event handling mirrors bpf/observe.bpf.c
 * (on_reply_events), without the maps. */
#include "redis/reply_scan.h"

#include <string.h>

#include "switchyard/resp_reply.h"

_Static_assert(SY_ERR_CLASSES <= 8, "err_class[] holds every class");

void sy_reply_scan_init(struct sy_reply_scan *s, bool fast, sy_reply_cb cb, void *arg)
{
	memset(s, 0, sizeof(*s));
	s->fast = fast;
	s->cb = cb;
	s->arg = arg;
}

static void on_events(struct sy_reply_scan *s, int ev, uint64_t began)
{
	struct sy_reply_info ri;

	if (ev & SY_REPLY_EV_ERROR)
		s->unparsed++;
	if (ev & SY_REPLY_EV_BEGIN) {
		s->reply_start = began;
		if (s->r.type == '>')
			s->pushes++;
		else
			s->replies++;
	}
	if (!(ev & SY_REPLY_EV_END))
		return;
	memset(&ri, 0, sizeof(ri));
	ri.type = s->r.type;
	ri.is_error = sy_reply_is_error(ri.type);
	ri.bytes = s->pos - s->reply_start;
	if (ri.is_error) {
		ri.err_class = sy_reply_err_class(&s->r);
		s->errors++;
		s->err_class[ri.err_class]++;
	}
	if (s->cb)
		s->cb(&ri, s->arg);
}

void sy_reply_scan_feed(struct sy_reply_scan *s, const uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint64_t m = sy_reply_skippable(&s->r);
		uint32_t left = n - i > UINT32_MAX ? UINT32_MAX : (uint32_t)(n - i);

		if (m) {
			uint32_t k = m < left ? (uint32_t)m : left;

			i += k;
			s->pos += k;
			on_events(s, sy_reply_skipped(&s->r, k), 0);
			continue;
		}
		if (s->fast) {
			int ev = 0;
			/* the kernel looks at most 64 bytes ahead: so do we */
			uint32_t k = sy_reply_fast(&s->r, (const struct sy_window *)(p + i),
						   left < 64 ? left : 64, left, &ev);

			if (k) {
				i += k;
				s->pos += k;
				on_events(s, ev, s->pos - k);
				continue;
			}
		}
		s->byte_steps++;
		s->pos++;
		on_events(s, sy_reply_byte(&s->r, p[i++]), s->pos - 1);
	}
}
