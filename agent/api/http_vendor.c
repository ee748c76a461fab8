// SPDX-License-Identifier: Apache-2.0
/* http_vendor.c — /vendor/chart.js from Debian's libjs-chart.js. See http_vendor.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/http_int.h"
#include "api/http_vendor.h"
#include "core/log.h"

/* Chart.js 3.9.1's chart.min.js is 195 KiB; a file far larger is not the library. */
#define VENDOR_MAX (8u << 20)

static char js_dir[PATH_MAX] = SY_HTTP_JS_DIR_DEFAULT;

int sy_http_vendor_dir(const char *dir)
{
	if (!dir)
		dir = SY_HTTP_JS_DIR_DEFAULT;
	if (dir[0] != '/' || strlen(dir) + 1 + sizeof(SY_HTTP_CHART_FILE) > sizeof(js_dir)) {
		sy_error("http", "--http-js-dir \"%s\": not an absolute path of at most %zu bytes", dir,
			 sizeof(js_dir) - 1 - sizeof(SY_HTTP_CHART_FILE));
		return -EINVAL;
	}
	snprintf(js_dir, sizeof(js_dir), "%s", dir);
	return 0;
}

static enum MHD_Result not_found(struct MHD_Connection *c)
{
	/* script-typed, so that the browser reports the 404 alone, not a MIME type too */
	static const char msg[] =
		"/* the charting library is not installed (apt install libjs-chart.js) */\n";

	return http_send_buf(c, 404, "text/javascript; charset=utf-8", msg, sizeof(msg) - 1,
			     MHD_RESPMEM_PERSISTENT, NULL);
}

enum MHD_Result sy_http_send_vendor_chart(struct MHD_Connection *c)
{
	static const char unreadable[] = "cannot read the charting library\n";
	char path[PATH_MAX + sizeof(SY_HTTP_CHART_FILE) + 1];
	struct stat st;
	char *buf;
	size_t got = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", js_dir, SY_HTTP_CHART_FILE);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return not_found(c);
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size > (off_t)VENDOR_MAX) {
		close(fd);
		return not_found(c);
	}
	buf = malloc((size_t)st.st_size + 1);
	while (buf && got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (!buf || got != (size_t)st.st_size) {
		free(buf);
		sy_warn("http", "%s: read %zu of %lld bytes", path, got, (long long)st.st_size);
		return http_send_buf(c, 500, "text/plain; charset=utf-8", unreadable, sizeof(unreadable) - 1,
				     MHD_RESPMEM_PERSISTENT, NULL);
	}
	return http_send_buf(c, 200, "text/javascript; charset=utf-8", buf, got, MHD_RESPMEM_MUST_FREE, NULL);
}
