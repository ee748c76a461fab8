// SPDX-License-Identifier: Apache-2.0
/* resp_scan.c — see resp_scan.h. The event handling mirrors bpf/observe.bpf.c
 * (on_name, on_cmd), without the maps: the table lookup is commands.c. */
#include "redis/resp_scan.h"

#include <string.h>

#include "redis/commands.h"
#include "switchyard/resp.h"

void sy_resp_scan_init(struct sy_resp_scan *s, bool fast, sy_resp_cmd_cb cb, void *arg)
{
	memset(s, 0, sizeof(*s));
	s->fast = fast;
	s->cb = cb;
	s->arg = arg;
}

static void on_name(struct sy_resp_scan *s)
{
	struct sy_resp *r = &s->r;
	const struct sy_command *c = NULL;
	struct sy_cmd_info ci;
	size_t len = r->name_len < SY_CMD_NAME_MAX ? r->name_len : SY_CMD_NAME_MAX;

	if (s->no_table)
		return;
	/* As the kernel, whose map key is the zero-padded name: trailing NULs are
	 * padding, a NUL before other bytes matches no entry (sy_command_find). */
	while (len && r->name[len - 1] == '\0')
		len--;
	if (!(r->flags & SY_RESPF_NAMETRUNC))
		c = sy_command_find(r->name, len);
	if (!c || sy_command_kernel_info(c, &ci))
		return;
	r->class = ci.class;
	if (!s->names_only)
		r->first_key = ci.first_key;
	r->cmd_flags = ci.flags;
}

static void on_cmd(struct sy_resp_scan *s)
{
	struct sy_resp *r = &s->r;
	/* every field set, no memset: gcc's `rep stos`, slow to start, was a third of a
	 * batch record's split (tests/tools/sy_reasmbench) */
	struct sy_resp_cmd c;

	c.name_len = r->name_len;
	memcpy(c.name, r->name, SY_CMD_NAME_MAX); /* zero padded, as the table's key */
	c.name[SY_CMD_NAME_MAX] = '\0';
	c.name_truncated = (r->flags & SY_RESPF_NAMETRUNC) != 0;
	c.class = r->class;
	c.first_key = r->first_key;
	c.cmd_flags = r->cmd_flags;
	c.is_inline = (r->flags & SY_RESPF_INLINE) != 0;
	c.argc = c.is_inline ? 0 : r->argc;
	c.has_key = (r->flags & SY_RESPF_KEYSEEN) != 0;
	c.key = r->key;
	c.key_len = r->key_len;
	c.key_truncated = (r->flags & SY_RESPF_KEYTRUNC) != 0;
	c.bytes = s->pos - s->cmd_start;
	c.start = s->cmd_start;
	c.args_at = c.is_inline ? 0 : s->name_end;
	s->commands++;
	if (s->cb)
		s->cb(&c, s->arg);
}

/* `name_end`: where the name's argument ended if this step raised SY_RESP_EV_NAME. */
static void on_events(struct sy_resp_scan *s, int ev, uint64_t began, uint64_t name_end)
{
	if (ev & SY_RESP_EV_ERROR)
		s->unparsed++;
	if (ev & SY_RESP_EV_BEGIN)
		s->cmd_start = began;
	if (ev & SY_RESP_EV_NAME) {
		s->name_end = name_end;
		on_name(s);
	}
	if (ev & SY_RESP_EV_CMD)
		on_cmd(s);
}

void sy_resp_scan_feed(struct sy_resp_scan *s, const uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint32_t m = sy_resp_skippable(&s->r), k = 0;
		uint32_t left = n - i > UINT32_MAX ? UINT32_MAX : (uint32_t)(n - i);
		int ev = 0;

		if (m) {
			k = m < left ? m : left;
			i += k;
			s->pos += k;
			on_events(s, sy_resp_skipped(&s->r, k), 0, s->pos);
			continue;
		}
		if (s->fast) {
			/* the kernel looks at most 64 bytes ahead: so do we */
			uint32_t avail = left < 64 ? left : 64, h, len;

			/* A step that starts at the name's header can read an empty name and
			 * go on over the arguments after it: the name ended after its header
			 * and "\r\n". Any other step stops at the name's end. */
			h = s->r.state == SY_RS_DOLLAR && s->r.arg == 0
				    ? sy_bulk_header(p + i, 0, avail, &len)
				    : 0;
			ev = s->names_only ? SY_RESP_IN_NAMES_ONLY : 0;
			k = sy_resp_fast(&s->r, (const struct sy_window *)(p + i), avail, left, &ev);
			if (k) {
				s->fast_steps++;
				i += k;
				s->pos += k;
				on_events(s, ev, s->pos - k, h ? s->pos - k + h + 2 : s->pos);
				continue;
			}
		}
		s->byte_steps++;
		ev = sy_resp_byte(&s->r, p[i]);
		i++;
		s->pos++;
		on_events(s, ev, s->pos - 1, s->pos);
	}
}

bool sy_resp_scan_between(const struct sy_resp_scan *s)
{
	return s->r.state == SY_RS_START;
}
