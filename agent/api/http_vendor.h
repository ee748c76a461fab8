// SPDX-License-Identifier: Apache-2.0
/* http_vendor.h — the one third-party file the dashboard loads: Chart.js, served at
 * /vendor/chart.js from Debian's libjs-chart.js (a Depends of the .deb), read from disk
 * at each request so an upgraded package is served without a restart. Not embedded: the
 * library stays Debian's, updated by apt with its security fixes. When the file is
 * missing the URL answers 404 and the page draws no charts, saying why (docs/dashboard.md).
 * Only this fixed name is served: no path from the request reaches the file system. */
#ifndef SY_HTTP_VENDOR_H
#define SY_HTTP_VENDOR_H

#include <microhttpd.h>

/* Where Debian's libjs-* packages install (--http-js-dir). */
#define SY_HTTP_JS_DIR_DEFAULT "/usr/share/javascript"
/* Under it, the file served at SY_HTTP_VENDOR_CHART_URL. */
#define SY_HTTP_CHART_FILE	 "chart.js/chart.min.js"
#define SY_HTTP_VENDOR_CHART_URL "/vendor/chart.js"

/* Sets the folder (NULL: the default); call before the listener starts. Returns 0, or
 * -EINVAL for an empty or relative path or one too long (logged). */
int sy_http_vendor_dir(const char *dir);
/* Answers SY_HTTP_VENDOR_CHART_URL: 200 with the file, 404 when it is missing or
 * unreadable, 500 when it cannot be read whole. Any thread. */
enum MHD_Result sy_http_send_vendor_chart(struct MHD_Connection *c);

#endif
