/* SPDX-License-Identifier: Apache-2.0 */
/* assets.S — the dashboard's files, embedded byte for byte (agent/api/http.c serves
 * them; the Makefile passes the folder with -I so .incbin finds them). */
	.section .rodata
	.balign 16
#define ASSET(sym, file)             \
	.global sym;                  \
	sym:                          \
	.incbin file;                 \
	.global sym##_end;            \
	sym##_end:                    \
	.byte 0

ASSET(sy_web_index_html, "index.html")
ASSET(sy_web_app_js, "app.js")
ASSET(sy_web_charts_js, "charts.js")
ASSET(sy_web_style_css, "style.css")

	.section .note.GNU-stack, "", @progbits
