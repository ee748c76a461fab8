# SPDX-License-Identifier: Apache-2.0
"""gRPC from the independent implementation (Debian's python3-grpcio).

Message classes are generated at test time with `protoc --python_out` from the
project's .proto files; calls go through grpcio's generic channel.unary_unary /
unary_stream, so no grpc-tools plugin is needed."""
import importlib
import importlib.util
import os
import subprocess
import sys
import tempfile

import grpc

from sy import ROOT

_GEN = None


def gen():
    """Compiles every proto once per test session; returns the module folder."""
    global _GEN
    if _GEN:
        return _GEN
    out = tempfile.mkdtemp(prefix="sy-pb-")
    protos = []
    for base, _, files in os.walk(os.path.join(ROOT, "proto")):
        protos += [os.path.relpath(os.path.join(base, f), os.path.join(ROOT, "proto"))
                   for f in files if f.endswith(".proto")]
    subprocess.run(["protoc", "--proto_path", os.path.join(ROOT, "proto"), "--python_out", out] + protos,
                   check=True)
    for base, dirs, _ in os.walk(out):
        for d in dirs:
            open(os.path.join(base, d, "__init__.py"), "a").close()
    sys.path.insert(0, out)
    _GEN = out
    return out


def pb(module):
    """pb("switchyard.v1.control") → the generated control_pb2 module. Modules under
    grpc/ are loaded by path: their package name would shadow grpcio's own."""
    out = gen()
    if module.startswith("grpc."):
        name = "sy_" + module.replace(".", "_") + "_pb2"
        if name not in sys.modules:
            path = os.path.join(out, *module.split(".")) + "_pb2.py"
            spec = importlib.util.spec_from_file_location(name, path)
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            sys.modules[name] = mod
        return sys.modules[name]
    return importlib.import_module(module + "_pb2")


def channel(target, gzip=False):
    opts = [("grpc.enable_retries", 0)]
    comp = grpc.Compression.Gzip if gzip else grpc.Compression.NoCompression
    return grpc.insecure_channel(target, options=opts, compression=comp)


def unary(ch, path, req, resp_cls, timeout=5, **kw):
    fn = ch.unary_unary(path, request_serializer=lambda m: m.SerializeToString(),
                        response_deserializer=resp_cls.FromString)
    return fn(req, timeout=timeout, **kw)


def stream(ch, path, req, resp_cls, timeout=None, **kw):
    fn = ch.unary_stream(path, request_serializer=lambda m: m.SerializeToString(),
                         response_deserializer=resp_cls.FromString)
    return fn(req, timeout=timeout, **kw)


def raw_unary(ch, path, payload, timeout=5):
    """Sends raw bytes as the request body (for undecodable-message tests)."""
    fn = ch.unary_unary(path, request_serializer=lambda b: b, response_deserializer=lambda b: b)
    return fn(payload, timeout=timeout)
