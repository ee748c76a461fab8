/* fuzz_grpc_server.c — bytes from a hostile client into the daemon's gRPC server: the
 * real connection read path (socketpair), nghttp2's server session, our framing,
 * routing and request decoding, with the health and Control services registered
 * (Control on an empty registry without BPF maps: only read-only calls can succeed).
 * Nothing may crash or leak. */
#include <stdint.h>
#include <stdlib.h>

#include "control_plane.h"
#include "rpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sy_loop *loop;
	static struct sy_rpc_server *srv;

	if (!loop) {
		loop = sy_loop_new();
		srv = sy_rpc_server_new(loop, NULL);
		sy_health_svc_register(srv);
	}
	sy_rpc_server_feed_raw(srv, data, size);
	return 0;
}
