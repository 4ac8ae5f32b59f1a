#!/usr/bin/env python3
"""Writes a C++ source defining a std::string_view with a file's bytes.

usage: embed_text.py INPUT OUTPUT QUALIFIED_NAME HEADER
"""
import sys

src, dst, name, header = sys.argv[1:5]
data = open(src, 'rb').read()
namespace, _, variable = name.rpartition('::')
with open(dst, 'w') as out:
    out.write(f'// Generated from {src.rsplit("/", 1)[-1]} by embed_text.py: do not edit.\n')
    out.write(f'#include "{header}"\n\nnamespace {namespace} {{\n\nnamespace {{\n')
    out.write('constexpr char kBytes[] = {\n')
    for i in range(0, len(data), 16):
        out.write('    ' + ', '.join(str(b if b < 128 else b - 256) for b in data[i:i + 16]) + ',\n')
    out.write('    0};\n} // namespace\n\n')
    out.write(f'const std::string_view {variable}(kBytes, sizeof kBytes - 1);\n\n}} // namespace {namespace}\n')
