#!/usr/bin/env python3
"""Circles of imports between the top-level modules of each crate.

    scripts/import-cycles.py [-v] crates/*/src src

For each source folder: the strongly connected groups of its top-level
modules, where module A depends on B when A's non-test code (doc comments
included) names an item of B:

- a path `crate::b::...`;
- a grouped import `use crate::{b::X, c::{Y, Z}}`, each path of the group;
- a name the crate root re-exports, `crate::X` or `use crate::{X, Y}`, where
  lib.rs (or main.rs) has `pub use b::X` (or `pub use b::{X, ...}`);
- `super::X` in a top-level module (the crate root, so as `crate::X`), and
  `super::super::...` from deeper modules likewise.

Test code is left out: an inline `#[cfg(test)] mod name { ... }` and a file
module declared `#[cfg(test)] mod name;` (with or without `#[path]`).

"no cycles" is the goal; a group lists modules that import each other
directly or through others. With -v, every edge between top-level modules
is listed with the first place that makes it.
"""
import collections
import os
import re
import sys

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def module_name(src, path):
    """`a::b` for src/a/b.rs or src/a/b/mod.rs; `crate` for lib.rs/main.rs."""
    rel = os.path.relpath(path, src)[:-3].replace(os.sep, "::")
    if rel in ("lib", "main"):
        return "crate"
    return re.sub(r"::mod$", "", rel)


def test_files(src, files):
    """Files that are only compiled for tests: `#[cfg(test)] mod x;`."""
    decl = re.compile(
        r"#\[cfg\(test\)\]\s*((?:#\[[^\]]*\]\s*)*)(?:pub(?:\([^)]*\))?\s+)?mod\s+("
        + IDENT
        + r")\s*;"
    )
    tests = set()
    for path, text in files.items():
        here = os.path.dirname(path)
        stem = os.path.basename(path)[:-3]
        # Children of a non-mod.rs file live in a folder named after it.
        if stem in ("lib", "main", "mod"):
            child_dir = here
        else:
            child_dir = os.path.join(here, stem)
        for m in decl.finditer(text):
            attrs, name = m.group(1), m.group(2)
            explicit = re.search(r'#\[path\s*=\s*"([^"]+)"\]', attrs)
            if explicit:
                candidates = [os.path.join(here, explicit.group(1))]
            else:
                candidates = [
                    os.path.join(child_dir, name + ".rs"),
                    os.path.join(child_dir, name, "mod.rs"),
                ]
            for c in candidates:
                c = os.path.normpath(c)
                if c in files:
                    tests.add(c)
                    # Everything under a test module is test code too.
                    sub = c[:-3] if not c.endswith("mod.rs") else os.path.dirname(c)
                    for other in files:
                        if other.startswith(sub + os.sep):
                            tests.add(other)
    return tests


def sources(src):
    """{module name: (path, text)} of the non-test files under src."""
    files = {}
    for root, _, names in os.walk(src):
        for f in names:
            if f.endswith(".rs"):
                p = os.path.normpath(os.path.join(root, f))
                with open(p) as fh:
                    files[p] = fh.read()
    skip = test_files(src, files)
    return {
        module_name(src, p): (p, text) for p, text in files.items() if p not in skip
    }


def strip_inline_tests(text):
    """The text without `#[cfg(test)] mod name { ... }` blocks (brace-matched)."""
    out = []
    pos = 0
    pat = re.compile(r"#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+" + IDENT + r"\s*\{")
    while True:
        m = pat.search(text, pos)
        if not m:
            out.append(text[pos:])
            return "".join(out)
        out.append(text[pos : m.start()])
        depth = 0
        i = m.end() - 1
        while i < len(text):
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
                if depth == 0:
                    break
            i += 1
        # Keep the newlines so that line numbers stay right.
        out.append("\n" * text.count("\n", m.start(), i + 1))
        pos = i + 1


def expand_group(text, start):
    """The paths of a `{...}` group beginning at text[start] == '{', and the end."""
    paths = []
    depth = 0
    i = start
    prefix_stack = [""]
    current = ""
    while i < len(text):
        ch = text[i]
        if ch == "{":
            depth += 1
            prefix_stack.append(prefix_stack[-1] + current)
            current = ""
        elif ch in ",}":
            item = current.strip()
            if item:
                paths.append(prefix_stack[-1] + item)
            current = ""
            if ch == "}":
                prefix_stack.pop()
                depth -= 1
                if depth == 0:
                    return paths, i + 1
        elif not ch.isspace():
            current += ch
        i += 1
    return paths, i


def named_paths(text):
    """(offset, path after `crate::`) of every crate path in text."""
    for m in re.finditer(r"\bcrate::", text):
        after = m.end()
        if after < len(text) and text[after] == "{":
            group, _ = expand_group(text, after)
            for p in group:
                yield m.start(), p
        else:
            p = re.match(IDENT + r"(?:::" + IDENT + r")*(?:::\{)?", text[after:])
            if not p:
                continue
            path = p.group(0)
            if path.endswith("::{"):
                group, _ = expand_group(text, after + len(path) - 1)
                for g in group:
                    yield m.start(), path[:-1] + g
            else:
                yield m.start(), path


def super_paths(module, text):
    """(offset, path from the crate root) of `super::` paths in text."""
    parts = module.split("::") if module != "crate" else []
    for m in re.finditer(r"\b((?:super::)+)(\{|" + IDENT + r"(?:::" + IDENT + r")*)", text):
        ups = m.group(1).count("super::")
        if ups > len(parts):
            continue
        base = parts[: len(parts) - ups]
        if m.group(2) == "{":
            group, _ = expand_group(text, m.start(2))
            tails = group
        else:
            tails = [m.group(2)]
        for tail in tails:
            yield m.start(), "::".join(base + [tail])


def root_reexports(root_text):
    """{name: module} for the crate root's `pub use module::...` items."""
    names = {}
    for m in re.finditer(r"pub\s+use\s+(" + IDENT + r")::", root_text):
        module = m.group(1)
        if module in ("crate", "self", "super", "std", "core", "alloc"):
            continue
        rest = root_text[m.end() :]
        if rest.startswith("{"):
            group, _ = expand_group(rest, 0)
        else:
            group = [re.match(r"[^;]*", rest).group(0)]
        for item in group:
            item = item.replace(" ", "")
            alias = re.search(r"as(" + IDENT + r")$", item)
            name = alias.group(1) if alias else item.split("::")[-1]
            names[name] = module
    return names


def deps(mods):
    """{top-level module: {top-level module it depends on: (file, line)}}."""
    root = mods.get("crate", (None, ""))[1]
    reexports = root_reexports(strip_inline_tests(root))
    tops = {m.split("::")[0] for m in mods if m != "crate"}
    graph = collections.defaultdict(dict)
    for module, (path, text) in mods.items():
        if module == "crate":
            continue
        top = module.split("::")[0]
        code = strip_inline_tests(text)
        found = list(named_paths(code)) + list(super_paths(module, code))
        for offset, p in found:
            head = p.split("::")[0]
            if head in tops:
                target = head
            elif head in reexports and reexports[head] in tops:
                target = reexports[head]
            else:
                continue
            if target != top and target not in graph[top]:
                graph[top][target] = (path, code.count("\n", 0, offset) + 1)
    return graph


def cycles(graph):
    """The strongly connected groups of more than one module (Tarjan)."""
    index, low, stack, on, found = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def main(args):
    verbose = "-v" in args
    for src in [a for a in args if a != "-v"]:
        graph = deps(sources(src))
        found = cycles(graph)
        print(src, found if found else "no cycles")
        if verbose:
            for a in sorted(graph):
                for b in sorted(graph[a]):
                    path, line = graph[a][b]
                    print(f"  {a} -> {b}  ({path}:{line})")


if __name__ == "__main__":
    main(sys.argv[1:])
