# SPDX-License-Identifier: Apache-2.0
"""The licence is stated where it applies: every source file carries an SPDX line in
its first lines, Apache-2.0 for the agent, CLI, tests and tools, and GPL-2.0-only OR
BSD-2-Clause for the kernel programs and the headers they share (they stay
GPL-compatible for the helpers they call); the texts are at the root."""
import os
import subprocess

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
DUAL = "GPL-2.0-only OR BSD-2-Clause"
SOURCE_EXT = (".c", ".h", ".def", ".proto", ".py", ".sh", ".S", ".js", ".mjs", ".css")


def tracked():
    out = subprocess.run(["git", "-C", ROOT, "ls-files"], capture_output=True, text=True, check=True).stdout
    return [f for f in out.split() if f.endswith(SOURCE_EXT) and not f.startswith("tests/fuzz/corpus/")]


def spdx(path):
    with open(os.path.join(ROOT, path), errors="replace") as f:
        for _ in range(3):
            line = f.readline()
            if "SPDX-License-Identifier:" in line:
                return line.split("SPDX-License-Identifier:", 1)[1].strip().rstrip("*/ -").strip()
    return None


def test_every_source_file_names_its_licence():
    files = tracked()
    assert len(files) > 100
    missing = [f for f in files if spdx(f) is None]
    assert not missing, "no SPDX line: %s" % missing[:20]
    for f in files:
        want = DUAL if f.startswith(("bpf/", "include/switchyard/")) else "Apache-2.0"
        assert spdx(f) == want, "%s: %s, want %s" % (f, spdx(f), want)


def test_bpf_programs_declare_a_gpl_compatible_licence():
    for name in os.listdir(os.path.join(ROOT, "bpf")):
        if name.endswith(".bpf.c"):
            text = open(os.path.join(ROOT, "bpf", name)).read()
            assert 'char LICENSE[] SEC("license") = "Dual BSD/GPL";' in text, name


def test_licence_texts_are_at_the_root():
    assert "Apache License" in open(os.path.join(ROOT, "LICENSE")).read()
    for name, marker in (("Apache-2.0.txt", "Apache License"), ("GPL-2.0-only.txt", "GNU GENERAL PUBLIC LICENSE"),
                         ("BSD-2-Clause.txt", "Redistribution and use")):
        assert marker in open(os.path.join(ROOT, "LICENSES", name)).read(), name
