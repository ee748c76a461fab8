// SPDX-License-Identifier: Apache-2.0
/* fuzz_capture.c — the agent's reading of ring-buffer records (kernel/capture.c,
 * sy_reasm_feed) on arbitrary records: headers with any flags, lengths, offsets and
 * counts, per-command records, fragments and batch records (SY_EVF_BATCH forced on
 * some) of a few sockets, in one reassembly that lives for the whole input. Whatever
 * the bytes, nothing is read or written out of bounds (ASan, UBSan), and
 *   - a batch record delivers, in order from its cmd_seq, commands whose body is
 *     exactly argc - 1 RESP arguments as Redis reads them (the byte after each '\r'
 *     unchecked), with an upper-case name and len == total; accepted, `total` of them; refused, at most
 *     `total` and then exactly one aborted capture;
 *   - every valid record is counted once in `records`.
 * Input: records one after another, each a 10-byte descriptor (see next_record) then
 * its bytes. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/capture.h"

#define MIG 5

struct seen {
	bool batch;	  /* the record being fed is a batch record */
	uint32_t first;	  /* its cmd_seq */
	uint32_t n;	  /* deliveries during this record */
	uint32_t aborted; /* of which aborted */
	bool after_abort; /* a delivery came after the abort */
};

/* The body is `args` arguments "$N\r?<N bytes>??", nothing before, between or after. */
static bool whole_args(const uint8_t *b, size_t len, uint32_t args)
{
	size_t pos = 0;

	for (uint32_t i = 0; i < args; i++) {
		size_t n = 0, digits = 0;

		if (pos >= len || b[pos] != '$')
			return false;
		for (pos++; pos < len && b[pos] >= '0' && b[pos] <= '9'; pos++, digits++)
			if ((n = n * 10 + (size_t)(b[pos] - '0')) > len)
				return false;
		if (!digits || pos + 2 > len || b[pos] != '\r')
			return false;
		pos += 2;
		if (n > len - pos || len - pos - n < 2)
			return false;
		pos += n + 2;
	}
	return pos == len;
}

static volatile uint8_t touched;

static void on_captured(const struct sy_captured *c, void *arg)
{
	struct seen *s = arg;
	/* every byte the consumer is given must be readable */
	for (size_t i = 0; i < c->len; i++)
		touched += c->body[i];
	if (s->aborted)
		s->after_abort = true;
	s->n++;
	if (c->aborted) {
		s->aborted++;
		return;
	}
	if (!s->batch)
		return;
	if (c->cmd_seq != s->first + s->n - 1 || c->len != c->total || c->truncated || c->is_inline ||
	    strnlen(c->name, sizeof(c->name)) > SY_CMD_NAME_MAX)
		abort();
	for (size_t i = 0; i < SY_CMD_NAME_MAX; i++)
		if (c->name[i] >= 'a' && c->name[i] <= 'z')
			abort();
	if (c->argc == 0 || !whole_args(c->body, c->len, c->argc - 1))
		abort();
}

static const char *const names[] = {"SET", "MULTI", "EXEC", "SELECT", "GET", "", "set", "DEL"};

/* Descriptor: flags, control (bit 0 batch: FIRST|LAST|BATCH forced; bit 1 a read key;
 * bits 2-3 the socket; bit 4 an invalid migration; bit 5 a size that disagrees with
 * len), len (2 bytes LE), total (2), off (2), cmd_seq, name index (low 3 bits) and
 * argc (high 4). Returns the bytes used, 0 at the end. */
static size_t next_record(struct sy_reasm *r, const uint8_t *d, size_t n, struct seen *s,
			  struct sy_capture_stats *per)
{
	static uint8_t rec[sizeof(struct sy_ev_hdr) + 65536];
	struct sy_ev_hdr h;
	uint8_t ctl;
	size_t len, size;
	uint64_t before = per[MIG].records;
	int rc;

	if (n < 10)
		return 0;
	ctl = d[1];
	memset(&h, 0, sizeof(h));
	h.flags = d[0];
	h.type = (ctl & 2) ? SY_EVT_READ_KEY : SY_EVT_WRITE;
	if (ctl & 1)
		h.flags |= SY_EVF_FIRST | SY_EVF_LAST | SY_EVF_BATCH;
	h.cookie = 100 + ((ctl >> 2) & 3);
	h.mig_id = (ctl & 16) ? SY_MAX_MIGRATIONS : MIG;
	len = (size_t)d[2] | (size_t)d[3] << 8;
	h.total = (uint32_t)d[4] | (uint32_t)d[5] << 8;
	h.off = (uint32_t)d[6] | (uint32_t)d[7] << 8;
	h.cmd_seq = d[8];
	h.argc = d[9] >> 4;
	if (!(h.flags & SY_EVF_BATCH)) {
		h.name_len = (uint8_t)strlen(names[d[9] & 7]);
		memcpy(h.name, names[d[9] & 7], h.name_len);
	}
	d += 10;
	n -= 10;
	if (len > n)
		len = n;
	h.len = (uint32_t)len;
	size = sizeof(h) + len;
	if (ctl & 32)
		h.len++;
	memcpy(rec, &h, sizeof(h));
	memcpy(rec + sizeof(h), d, len);

	memset(s, 0, sizeof(*s));
	s->batch = h.type == SY_EVT_WRITE && (h.flags & SY_EVF_BATCH);
	s->first = h.cmd_seq;
	rc = sy_reasm_feed(r, rec, size, per);
	if (rc == -EINVAL) {
		if (s->n || per[MIG].records != before)
			abort();
	} else if (per[MIG].records != before + 1) {
		abort();
	}
	if (s->batch && rc != -EINVAL) {
		if (rc == 0 && (s->n != h.total || s->aborted))
			abort();
		if (rc != 0 && (s->aborted != 1 || s->after_abort || s->n - 1 > h.total))
			abort();
	}
	return 10 + len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sy_capture_stats per[SY_MAX_MIGRATIONS];
	struct seen s;
	struct sy_reasm *r = sy_reasm_new(8, on_captured, &s);
	size_t k;

	if (!r)
		return 0;
	memset(per, 0, sizeof(per));
	while ((k = next_record(r, data, size, &s, per))) {
		data += k;
		size -= k;
	}
	sy_reasm_free(r);
	return 0;
}
